"""A run file's layout: what each group and dataset holds, and the records about it.

Layout (DESIGN.md, "HDF5 layout")::

    /                     attrs: rigd_version, run_id, start_time, stop_time,
                          host, pipeline (YAML text), run_state, user metadata
    /<stream>/frames      N x frame shape; one frame per chunk (several when
                          frames are under 256 KiB)
    /<stream>/frame_id    uint64, the source's frame ids
    /<stream>/timestamp_ns  int64, acquisition time (ns since the epoch)
    /<stream>/latency_ns  int64, acquisition to written, per frame (optional)
    /<stream>/dropped     the drop ledger: first_id, count, reason, noted_ns
    /<stream>/message_bytes  a messages stream's objects, one pickle after
                          another (uint8); its ``frames`` are N x 2 uint64,
                          each message's ``[start, stop)`` in these bytes
    /<table>              tables a recorder asked for (compound rows, attr
                          ``rigd_table``), e.g. a triggered recorder's ``events``
    /entry                NeXus (NXentry, NXinstrument/NXdetector, NXdata per
                          stream), hard links to the datasets above; a records
                          stream's fields, one dataset each (see ``_nexus``)

This module holds the rules and the value types (``StreamSpec``, the
summaries); ``_h5file`` creates the objects, ``_run_writer`` fills them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from rigd.storage import _nexus
from rigd.storage._fields import RecordField, record_fields

# HDF5 1.10's format: SWMR needs it, and Debian's hdf5-tools (1.10) read it.
LIBVER = ("v110", "v110")
SMALL_FRAME_BYTES = 256 * 1024
RECORD_CHUNK = 4096
REASON_BYTES = 64
# Records streams of up to this many columns get field names when none are given.
AUTO_FIELDS = 16
MESSAGE_CHUNK = 64 * 1024
MESSAGE_FIELDS = (
    RecordField("start", "byte", "first byte of the message in message_bytes"),
    RecordField("stop", "byte", "end (exclusive) of the message in message_bytes"),
)
LEDGER_DTYPE = np.dtype(
    [
        ("first_id", "<u8"),
        ("count", "<u8"),
        ("reason", f"S{REASON_BYTES}"),
        ("noted_ns", "<i8"),
    ]
)


class DropReason(StrEnum):
    """Why frames are in the drop ledger."""

    #: The source's frame ids skip: the frames never reached the recorder.
    GAP = "gap"
    #: The ring's writer overwrote them before the recorder read them.
    RING_OVERRUN = "ring_overrun"
    #: The recorder (or a processor before it) was restarted.
    RESTART = "restart"
    #: The source dropped them: its ring was full (a lossless reader a whole
    #: ring behind), and a camera is never held back (``RingWriter.skip``).
    RING_FULL = "ring_full"
    #: The recording stopped on a write error.
    WRITE_ERROR = "write_error"
    #: The recorder fell too far behind its input ring (a slow or stalled
    #: disk) and dropped the oldest frames it had not written, rather than
    #: hold the source back (``HDF5Recorder(when_behind="drop")``).
    DISK_BEHIND = "disk_behind"
    #: The source ended before the frames it promised (a video file cut
    #: short or damaged: ``VideoSource``): they were never delivered.
    SOURCE_ENDED_EARLY = "source_ended_early"
    #: A network source refused the message that carried them (its header
    #: named the id; a frame of another shape, say: ``ZmqSource``).
    REJECTED = "rejected"


@dataclass(frozen=True)
class StreamSpec:
    """One recorded stream: its group name, frame shape and dtype, and options."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    #: ``None``, ``"lz4"``, ``"zstd"`` or ``"bitshuffle-lz4"``.
    compression: str | None = None
    #: Store each frame's acquisition-to-written latency.
    latency_trace: bool = True
    #: What each column of a records stream (1-D frames) means: one field per
    #: column (``FrameStats``: mean, min, max). Unnamed records of up to 16
    #: columns get ``field0``, ``field1``, ...; images have none.
    fields: tuple[RecordField, ...] = ()
    #: The frames' units (NeXus ``units``): a camera's pixels are ``counts``.
    units: str = "counts"
    #: ``frames`` (arrays), ``records`` (a structured dtype: ``frames`` is a
    #: compound dataset, its fields the dtype's) or ``messages`` (any objects:
    #: written with ``write_message``; ``shape``, ``dtype`` and ``fields``
    #: are then set here: N x 2 uint64 byte ranges ``start``, ``stop``).
    kind: str = "frames"

    def __post_init__(self) -> None:
        if self.kind not in ("frames", "records", "messages"):
            raise ValueError(
                f"stream {self.name!r}: kind must be frames, records or messages, got {self.kind!r}"
            )
        if self.kind == "messages":
            object.__setattr__(self, "shape", (2,))
            object.__setattr__(self, "dtype", np.dtype("<u8"))
            object.__setattr__(self, "units", "byte")
            object.__setattr__(self, "fields", MESSAGE_FIELDS)
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(
                f"stream name {self.name!r} cannot name an HDF5 group; use letters, "
                "digits and underscores"
            )
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if not self.shape or any(n <= 0 for n in self.shape):
            raise ValueError(f"stream {self.name!r}: frame shape {self.shape} must be positive")
        if self.dtype.hasobject or self.dtype.itemsize == 0:
            raise ValueError(f"stream {self.name!r}: dtype {self.dtype} cannot be recorded")
        fields = record_fields(self.fields)
        if (
            not fields
            and self.dtype.names is None
            and len(self.shape) == 1
            and self.shape[0] <= AUTO_FIELDS
        ):
            fields = tuple(RecordField(f"field{k}") for k in range(self.shape[0]))
        if fields and self.shape != (len(fields),):
            raise ValueError(
                f"stream {self.name!r}: {len(fields)} field(s) {[f.name for f in fields]} "
                f"name the columns of 1-D frames of that length, not frames of shape "
                f"{self.shape}"
            )
        object.__setattr__(self, "fields", fields)

    @property
    def frame_bytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    @property
    def frames_per_chunk(self) -> int:
        """One frame per chunk; as many as fit in 256 KiB when frames are small."""
        return max(1, SMALL_FRAME_BYTES // self.frame_bytes)


@dataclass(frozen=True)
class RecorderStatistics:
    """What a writer has done so far (a snapshot)."""

    frames_written: Mapping[str, int]
    frames_dropped: Mapping[str, int]
    bytes_written: int
    flushes: int
    fsyncs: int
    #: The longest any ``write`` call took, in seconds: what the caller waited.
    max_write_s: float
    max_flush_s: float
    max_fsync_s: float
    #: Raw chunk bytes written with O_DIRECT (the rest went through the page cache).
    direct_bytes: int = 0


@dataclass(frozen=True)
class StreamSummary:
    """One stream of a run file, as ``inspect_run`` reads it."""

    name: str
    frames: int
    shape: tuple[int, ...]
    dtype: str
    compression: str | None
    first_frame_id: int | None
    last_frame_id: int | None
    duration_s: float
    rate_hz: float
    dropped: int
    ledger: tuple[tuple[int, int, str], ...]
    latency_p50_ms: float | None
    latency_p99_ms: float | None


@dataclass(frozen=True)
class RunSummary:
    """A run file: where, which run, its state, its streams and metadata."""

    path: str
    run_id: str
    run_state: str
    start_time: str
    stop_time: str
    host: str
    rigd_version: str
    streams: tuple[StreamSummary, ...]
    metadata: Mapping[str, Any]
    pipeline: str = ""
    #: The NeXus view: the entry's default plot and its NXdata groups; None in
    #: a file written before run files carried NeXus.
    nexus: tuple[str, tuple[_nexus.NexusData, ...]] | None = None
    #: Why the run failed (the ``failure`` attribute: a reprocessed file's,
    #: ``mark_failed``); "" if none.
    failure: str = ""
    #: True: the file is not sealed (HDF5's open-for-write mark) and no live
    #: process writes it (``_writer_lock``): its writer was killed or crashed,
    #: and ``rigd recover FILE`` seals it. False: sealed, or a live run's.
    writer_gone: bool = False

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.streams)


@dataclass(frozen=True)
class RecoveryReport:
    """What ``recover_run`` did to a file."""

    path: str
    #: ``"recovered"`` when repaired now; else the state it already had.
    run_state: str
    repaired: bool
    frames: Mapping[str, int] = field(default_factory=dict)
