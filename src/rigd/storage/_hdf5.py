"""Frames at rest: one HDF5 file per run, readable while written, crash-safe.

The HDF5 half of ``rigd.storage``, imported on first use (actors that never
record do not pay for h5py). Its parts, one concept each:

- ``_run_layout``: the file's layout, ``StreamSpec``, the drop ledger, the
  summaries;
- ``_run_metadata``: run metadata rules and file name templates;
- ``_h5file``: the one module that imports h5py (files opened, objects
  created);
- ``_run_file``: a run's objects laid out at its start, found again on resume;
- ``_run_writer``: ``RunWriter``, the writer's surface and lock;
- ``_stream_state``: what the writer keeps per stream and table;
- ``_chunk_io``: frames to the file in chunks (pwrite, compression pool);
- ``_housekeeping``: the flush, fsync and writeback timers;
- ``_stream_reader``: a stream frame by frame (``StreamReader``, ``describe_stream``);
- ``_run_inspect``: a run's summary (``inspect_run``), NWB export;
- ``_run_recover``: sealing a run, repairing one a crash left open;
- ``_run_provenance``: what a reprocessed run file carries from its source.
"""

from rigd.storage._run_args import check_compression, check_interval
from rigd.storage._run_inspect import export_nwb, inspect_run
from rigd.storage._run_layout import (
    DropReason,
    RecorderStatistics,
    RecoveryReport,
    RunSummary,
    StreamSpec,
    StreamSummary,
)
from rigd.storage._run_metadata import (
    DEFAULT_TEMPLATE,
    RESERVED_ATTRIBUTES,
    check_metadata,
    run_file_path,
)
from rigd.storage._run_provenance import (
    SourceRun,
    carry_ledger,
    carry_provenance,
    carry_source,
    made_by,
    mark_failed,
    read_source,
    run_metadata,
    source_state,
)
from rigd.storage._run_recover import check_sealed, recover_run
from rigd.storage._run_whole import check_whole
from rigd.storage._run_writer import RunWriter
from rigd.storage._stream_reader import StreamDescription, StreamReader, describe_stream

__all__ = [
    "DEFAULT_TEMPLATE",
    "RESERVED_ATTRIBUTES",
    "DropReason",
    "RecorderStatistics",
    "RecoveryReport",
    "RunSummary",
    "RunWriter",
    "SourceRun",
    "StreamDescription",
    "StreamReader",
    "StreamSpec",
    "StreamSummary",
    "carry_ledger",
    "carry_provenance",
    "carry_source",
    "check_compression",
    "check_interval",
    "check_metadata",
    "check_sealed",
    "check_whole",
    "describe_stream",
    "export_nwb",
    "inspect_run",
    "made_by",
    "mark_failed",
    "read_source",
    "recover_run",
    "run_file_path",
    "run_metadata",
    "source_state",
]
