"""Frames in flight (shared-memory rings) and at rest (HDF5 run files).

``FrameRing`` moves frames between processes without copying them: one
writer, any number of readers, a policy per reader. See ``_ring.py``.
``RunWriter`` records frames to one HDF5 file per run, readable while it is
written and repaired by ``recover_run`` after a crash. See ``_hdf5.py``.

The HDF5 half is imported on first use, so actors that never record do not
pay for h5py.
"""

from typing import TYPE_CHECKING, Any

from rigd.storage._dtypes import dtype_text, is_record_dtype, parse_dtype
from rigd.storage._fields import RecordField
from rigd.storage._futex import call_before_sleeping
from rigd.storage._messages import (
    DEFAULT_MAX_MESSAGE_BYTES,
    Message,
    MessageReader,
    MessageTooLargeError,
    MessageWriter,
    message_ring_shape,
)
from rigd.storage._oob import SerializationError
from rigd.storage._ring import (
    RING_KINDS,
    Frame,
    FrameRing,
    ReaderPolicy,
    ReaderStatistics,
    RingReader,
    RingStatistics,
    RingWriter,
    remove_stale_rings,
    shm_free_bytes,
)
from rigd.storage._ring_notes import OWN_IDS, DropNote, end_spans, gap_spans
from rigd.storage._store import (
    RUN_ENV,
    STORE_ENV,
    Store,
    attach,
    current_store,
    own_store,
    remove_stale_stores,
)
from rigd.storage._writer_lock import wait_writer_gone, writer_alive

if TYPE_CHECKING:
    from rigd.storage._hdf5 import (
        RESERVED_ATTRIBUTES,
        DropReason,
        RecorderStatistics,
        RecoveryReport,
        RunSummary,
        RunWriter,
        SourceRun,
        StreamDescription,
        StreamReader,
        StreamSpec,
        StreamSummary,
        carry_ledger,
        carry_provenance,
        carry_source,
        check_compression,
        check_interval,
        check_metadata,
        check_sealed,
        check_whole,
        describe_stream,
        export_nwb,
        inspect_run,
        made_by,
        mark_failed,
        read_source,
        recover_run,
        run_file_path,
        run_metadata,
        source_state,
    )


def __getattr__(name: str) -> Any:
    # Module __getattr__ runs only for names not defined above: a public name
    # that reaches it is one of the HDF5 half's.
    if name in __all__:
        from rigd.storage import _hdf5

        return getattr(_hdf5, name)
    raise AttributeError(f"module 'rigd.storage' has no attribute {name!r}")


__all__ = [  # noqa: RUF022 - plain sorted order, which tests/test_exports.py checks
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DropNote",
    "DropReason",
    "Frame",
    "FrameRing",
    "Message",
    "MessageReader",
    "MessageTooLargeError",
    "MessageWriter",
    "OWN_IDS",
    "RESERVED_ATTRIBUTES",
    "RING_KINDS",
    "RUN_ENV",
    "ReaderPolicy",
    "ReaderStatistics",
    "RecordField",
    "RecorderStatistics",
    "RecoveryReport",
    "RingReader",
    "RingStatistics",
    "RingWriter",
    "RunSummary",
    "RunWriter",
    "STORE_ENV",
    "SerializationError",
    "SourceRun",
    "Store",
    "StreamDescription",
    "StreamReader",
    "StreamSpec",
    "StreamSummary",
    "attach",
    "call_before_sleeping",
    "carry_ledger",
    "carry_provenance",
    "carry_source",
    "check_compression",
    "check_interval",
    "check_metadata",
    "check_sealed",
    "check_whole",
    "current_store",
    "describe_stream",
    "dtype_text",
    "end_spans",
    "export_nwb",
    "gap_spans",
    "inspect_run",
    "is_record_dtype",
    "made_by",
    "mark_failed",
    "message_ring_shape",
    "own_store",
    "parse_dtype",
    "read_source",
    "recover_run",
    "remove_stale_rings",
    "remove_stale_stores",
    "run_file_path",
    "run_metadata",
    "shm_free_bytes",
    "source_state",
    "wait_writer_gone",
    "writer_alive",
]
