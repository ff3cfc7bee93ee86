"""Frames at rest: one HDF5 file per run, readable while written, crash-safe.

The only module of rigd that imports h5py. Layout (DESIGN.md, "HDF5 layout")::

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

How it stays fast and safe:

- Every object exists before the first frame, then the file switches to
  SWMR: readers (h5py with ``swmr=True``, ``rigd inspect``) follow the run
  live, and what is on disk is consistent after every flush.
- Raw frames never go through HDF5's write path: their chunks get file
  space as the dataset grows (early allocation, no fill), one chunk at a
  time just before their bytes are written, and their bytes
  are written with ``pwrite`` at the chunk's offset, which lets go of the
  GIL (h5py holds it through every HDF5 call, a 17 ms disk write
  included). ``write`` copies the frame into a pooled chunk buffer and an
  I/O thread writes it, or, with ``write_buffers=0``, writes the caller's
  frame itself with no copy. Compressed streams are compressed by a thread
  pool (``_codecs``) and written in order with direct chunk writes.
- A reader never sees an unwritten frame: ``frames`` grows chunk by chunk
  as frames are written, and HDF5 publishes its extent only at a flush,
  which waits until every chunk in the extent is on its way through the
  page cache (a flush that finds one still with the I/O thread tries again
  10 ms later). ``len(frame_id)`` is the documented count: the frames whose
  records are in the file (the per-frame records reach the file at each
  flush, after the frames they describe); ``frames`` is at least that long
  and holds only written frames, so ``f["cam/frames"][-1]`` is a real frame.
- Every file is also a NeXus file (``_nexus``): ``/entry`` links to the
  same datasets, with units and ``default`` down to the image.
- A housekeeping thread flushes every ``flush_interval`` and fsyncs every
  ``fsync_interval``; fsync runs on a duplicate descriptor, outside HDF5's
  lock, so it never holds up ``write``.
- Closing reopens the file without SWMR to seal it: stop time, counts and
  ``run_state = "complete"``. A file left ``recording`` by a crash is
  repaired by ``recover_run`` and marked ``recovered``.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import json
import logging
import os
import socket
import string
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import h5py

try:
    import hdf5plugin  # noqa: F401 - registers the compression filters with HDF5
except ImportError:  # a dependency, but raw files need none: _codecs says what to install
    pass
import numpy as np

from rigd._exceptions import RecordingError
from rigd._version import __version__
from rigd.storage import _nexus
from rigd.storage._codecs import Codec, codec
from rigd.storage._fields import RecordField, record_fields
from rigd.storage._superblock import read_superblock, repair_superblock

__all__ = [
    "DEFAULT_TEMPLATE",
    "DropReason",
    "RecorderStatistics",
    "RecoveryReport",
    "RunSummary",
    "RunWriter",
    "StreamReader",
    "StreamSpec",
    "StreamSummary",
    "export_nwb",
    "inspect_run",
    "recover_run",
    "run_file_path",
]

log = logging.getLogger(__name__)

# HDF5 1.10's format: SWMR needs it, and Debian's hdf5-tools (1.10) read it.
LIBVER = ("v110", "v110")
DEFAULT_TEMPLATE = "{date}_{time}_{run_id}.h5"
_TEMPLATE_FIELDS = ("run_id", "date", "time", "pipeline")
_SMALL_FRAME_BYTES = 256 * 1024
_RECORD_CHUNK = 4096
# How often the writer starts the kernel writing dirty pages out.
_WRITEBACK_S = 0.1
_REASON_BYTES = 64
# Records streams of up to this many columns get field names when none are given.
_AUTO_FIELDS = 16
# A flush that finds raw chunks still on their way to the disk waits this long
# and tries again, so the extent readers see never covers an unwritten chunk.
_FLUSH_RETRY_S = 0.01
_MESSAGE_CHUNK = 64 * 1024
_MESSAGE_FIELDS = (
    RecordField("start", "byte", "first byte of the message in message_bytes"),
    RecordField("stop", "byte", "end (exclusive) of the message in message_bytes"),
)
_LEDGER_DTYPE = np.dtype(
    [
        ("first_id", "<u8"),
        ("count", "<u8"),
        ("reason", f"S{_REASON_BYTES}"),
        ("noted_ns", "<i8"),
    ]
)
#: Root attributes rigd writes itself; run metadata may not use these names.
RESERVED_ATTRIBUTES = frozenset(
    {
        "rigd_version",
        "run_id",
        "start_time",
        "stop_time",
        "host",
        "pipeline",
        "run_state",
        "recovered_time",
        # NeXus's NXroot attributes (_nexus.describe_root).
        "NX_class",
        "default",
        "creator",
        "creator_version",
        "file_name",
        "file_time",
        "HDF5_Version",
    }
)


class DropReason(StrEnum):
    """Why frames are in the drop ledger."""

    #: The source's frame ids skip: the frames never reached the recorder.
    GAP = "gap"
    #: The ring's writer overwrote them before the recorder read them.
    RING_OVERRUN = "ring_overrun"
    #: The recorder (or a processor before it) was restarted.
    RESTART = "restart"
    #: The recording stopped on a write error.
    WRITE_ERROR = "write_error"


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
            object.__setattr__(self, "fields", _MESSAGE_FIELDS)
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
            and self.shape[0] <= _AUTO_FIELDS
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
        return max(1, _SMALL_FRAME_BYTES // self.frame_bytes)


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


def run_file_path(
    directory: str | os.PathLike[str],
    run_id: str,
    *,
    template: str = DEFAULT_TEMPLATE,
    pipeline: str = "",
    when: dt.datetime | None = None,
) -> Path:
    """The path of a run's file from a name template.

    Fields: ``{run_id}``, ``{date}`` (YYYYMMDD), ``{time}`` (HHMMSS, UTC) and
    ``{pipeline}``. Values are made safe for a file name.

    Raises:
        ValueError: the template names another field or is not a file name.
    """
    when = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    unknown = sorted({n for n in names if n not in _TEMPLATE_FIELDS})
    if unknown:
        raise ValueError(
            f"file name template {template!r} uses unknown field(s) {unknown}; "
            f"use only {{{'}, {'.join(_TEMPLATE_FIELDS)}}}"
        )
    values = {
        "run_id": _safe(run_id),
        "date": when.strftime("%Y%m%d"),
        "time": when.strftime("%H%M%S"),
        "pipeline": _safe(pipeline) or "pipeline",
    }
    name = template.format(**values)
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"file name template {template!r} must give a file name, not a path")
    if not name.endswith((".h5", ".hdf5")):
        name += ".h5"
    return Path(directory) / name


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text)).strip(".")


def _utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


#: Limits on run metadata: a key's length, a stored value's length, and all of it.
MAX_METADATA_KEY = 255
MAX_METADATA_VALUE = 16384
MAX_METADATA_TOTAL = 65536


def check_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Run metadata as it will be stored.

    Strings, numbers and bools are stored as they are, lists of numbers as
    arrays; anything else JSON can hold (a nested mapping such as
    ``{"mouse": {"id": "M12"}}``, a list of strings) is stored as its JSON
    text, which ``json.loads`` reads back.

    Raises:
        ValueError: naming the key: a key that is empty, has '/' or a NUL, is
            longer than 255 characters or is one of rigd's own attributes; a
            string with a NUL; a value JSON cannot hold, or longer than 16 KiB
            once stored; more than 64 KiB of metadata in all.
    """
    checked: dict[str, Any] = {}
    total = 0
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or "/" in key or "\0" in key:
            raise ValueError(f"metadata key {key!r} must be a non-empty string without '/' or NUL")
        if not _encodable(key):
            raise ValueError(f"metadata key {key!r} is not valid UTF-8 text (a lone surrogate)")
        if len(key) > MAX_METADATA_KEY:
            raise ValueError(
                f"metadata key {key[:40]!r}... is {len(key)} characters; keys are at most "
                f"{MAX_METADATA_KEY}"
            )
        if key in RESERVED_ATTRIBUTES:
            raise ValueError(
                f"metadata key {key!r} is reserved for rigd's own run attributes; rename it"
            )
        if isinstance(value, str):
            if "\0" in value:
                raise ValueError(
                    f"metadata {key!r}: the string holds a NUL character, which HDF5 cannot "
                    "store; remove it"
                )
            if not _encodable(value):
                raise ValueError(f"metadata {key!r} is not valid UTF-8 text (a lone surrogate)")
            stored: Any = value
            size = len(value.encode())
        elif isinstance(value, bool | int | float | np.generic):
            if (
                isinstance(value, int)
                and not isinstance(value, bool)
                and not (-(2**63) <= value < 2**64)
            ):
                raise ValueError(
                    f"metadata {key!r} = {value}: integers are stored as 64-bit; send it "
                    "as a string"
                )
            stored, size = value, 8
        elif (
            isinstance(value, Sequence)
            and value
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            try:
                stored = np.asarray(value)
            except OverflowError:
                stored = None
            if stored is None or stored.dtype == object:
                raise ValueError(f"metadata {key!r}: a list of numbers that fit 64 bits")
            size = stored.nbytes
        else:
            try:
                stored = json.dumps(value, allow_nan=False, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"metadata {key!r} = {value!r:.80}: an attribute holds a string, a number, "
                    f"a bool, a list of numbers, or JSON ({exc}); convert it"
                ) from None
            if not _encodable(stored):
                raise ValueError(f"metadata {key!r} is not valid UTF-8 text (a lone surrogate)")
            size = len(stored.encode())
        if size > MAX_METADATA_VALUE:
            raise ValueError(
                f"metadata {key!r} is {size} bytes stored; a value is at most "
                f"{MAX_METADATA_VALUE} (store large data as a file or a stream)"
            )
        total += size + len(key)
        if total > MAX_METADATA_TOTAL:
            raise ValueError(
                f"the run's metadata is over {MAX_METADATA_TOTAL} bytes at {key!r}; send less"
            )
        checked[key] = stored
    return checked


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class _Stream:
    """The writer's state for one stream. Touched under the writer's lock."""

    def __init__(self, spec: StreamSpec, group: h5py.Group, codec_: Codec | None) -> None:
        self.spec = spec
        self.codec = codec_
        self.k = spec.frames_per_chunk
        self.frames = group["frames"]
        self.frame_id = group["frame_id"]
        self.timestamp_ns = group["timestamp_ns"]
        self.latency_ns = group["latency_ns"] if spec.latency_trace else None
        self.dropped = group["dropped"]
        #: A messages stream's bytes, and how many it holds.
        self.message_bytes: h5py.Dataset | None = group.get("message_bytes")
        self.message_size = 0 if self.message_bytes is None else len(self.message_bytes)
        #: A records stream's field datasets (``/entry/<stream>/<field>``), and
        #: the rows not yet flushed to them.
        self.columns: dict[str, h5py.Dataset] = {}
        self.rows: list[np.ndarray[Any, Any]] = []
        self.extent = 0  # frames' first dimension
        self.received = 0  # frames handed to write()
        self.written = 0  # frames whose bytes are in the file, in order
        self.flushed = 0  # frames whose records are in the file
        # Records of frames not yet flushed: [flushed, received).
        self.ids: list[int] = []
        self.stamps: list[int] = []
        self.latencies: list[int] = []
        self.next_id: int | None = None
        #: Why the next gap in frame ids happened, when known (a restart).
        self.gap_reason: str = DropReason.GAP
        self.ledger: list[tuple[int, int, bytes, int]] = []
        self.dropped_total = 0
        # Small frames gather in a staging chunk.
        self.staging: np.ndarray[Any, Any] | None = None
        # Chunks in flight, oldest first: (first frame, frames, future, buffer).
        # A compressed chunk's future gives its bytes (written here, under
        # HDF5); a raw chunk's future is its write, done by the I/O thread.
        self.pending: deque[tuple[int, int, Future[Any], np.ndarray[Any, Any] | None]] = deque()
        # Raw chunks: their file offsets (allocated when the extent grows),
        # and spare chunk buffers for the I/O thread.
        self.offsets: list[int | None] = []
        self.spare: list[np.ndarray[Any, Any]] = []

    def new_chunk(self) -> np.ndarray[Any, Any]:
        """A chunk-sized buffer (staging for small frames, or for the I/O thread)."""
        if self.spare:
            return self.spare.pop()
        return np.zeros((self.k, *self.spec.shape), self.spec.dtype)


class _Table:
    """A table's rows waiting for the next flush."""

    def __init__(self, dataset: h5py.Dataset) -> None:
        self.dataset = dataset
        self.count = len(dataset)
        self.pending: list[tuple[Any, ...]] = []
        self.updates: dict[int, tuple[Any, ...]] = {}

    def flush(self) -> None:
        dataset = self.dataset
        for index, row in self.updates.items():
            dataset[index] = np.array(row, dtype=dataset.dtype)
        self.updates.clear()
        if self.pending:
            rows = np.array(self.pending, dtype=dataset.dtype)
            dataset.resize(self.count + len(rows), axis=0)
            dataset[self.count :] = rows
            self.count += len(rows)
            self.pending.clear()


class RunWriter:
    """Writes one run to one HDF5 file; see the module docstring.

    ``write`` is meant for one thread (the recorder's loop); the writer's own
    threads flush, fsync and compress beside it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        streams: Sequence[StreamSpec],
        *,
        run_id: str,
        pipeline: str = "",
        metadata: Mapping[str, Any] | None = None,
        flush_interval: float = 0.5,
        fsync_interval: float = 1.0,
        compression_threads: int | None = None,
        write_buffers: int = 8,
        tables: Mapping[str, Any] | None = None,
    ) -> None:
        """Create the file (never overwriting one) and start recording.

        Args:
            write_buffers: raw chunks that may wait for the disk. ``write``
                copies a frame into one and returns; the I/O thread writes
                it (so a slow disk stalls the caller only once they are all
                full). 0: ``write`` writes the caller's frame itself, with no
                copy, and returns once it is in the file (a recorder fed by
                a ring, whose slots are the buffer, wants this).
            tables: root datasets of rows, by name and (compound) numpy
                dtype, written with ``append_row`` / ``update_row`` and
                visible to SWMR readers at each flush.

        Raises:
            FileExistsError: a file is already at ``path``.
            ValueError: bad streams, metadata or intervals (nothing is created).
        """
        self.path = Path(path)
        if not streams:
            raise ValueError("a run file needs at least one stream")
        names = [s.name for s in streams]
        if len(set(names)) != len(names):
            raise ValueError(f"stream names must be unique, got {names}")
        tables = dict(tables or {})
        clash = sorted(set(tables) & set(names))
        if clash:
            raise ValueError(f"tables {clash} have the names of streams; name them apart")
        if flush_interval <= 0 or fsync_interval <= 0:
            raise ValueError(
                f"flush_interval ({flush_interval}) and fsync_interval ({fsync_interval}) "
                "must be positive"
            )
        checked = check_metadata(metadata or {})
        codecs = {s.name: codec(s.compression) if s.compression else None for s in streams}
        if self.path.exists():
            raise FileExistsError(
                f"{self.path} exists; rigd never overwrites a run file. Use a new run id "
                "or a file name template with {time} in it"
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if write_buffers < 0:
            raise ValueError(f"write_buffers must be >= 0, got {write_buffers}")
        self._init_state(run_id, flush_interval, fsync_interval, write_buffers)
        # 'x': fail if the file appeared since the check above.
        self._file = h5py.File(self.path, "x", libver=LIBVER)
        try:
            attrs = self._file.attrs
            start_time = _utc_now_iso()
            attrs["rigd_version"] = __version__
            attrs["run_id"] = run_id
            attrs["start_time"] = start_time
            attrs["host"] = socket.gethostname()
            attrs["pipeline"] = pipeline
            attrs["run_state"] = "recording"
            for key, value in checked.items():
                attrs[key] = value
            _nexus.describe_root(
                self._file,
                file_name=self.path.name,
                start_time=start_time,
                version=__version__,
                hdf5=h5py.version.hdf5_version,
            )
            images = [s.name for s in streams if not s.fields]
            entry = _nexus.make_entry(
                self._file,
                run_id=run_id,
                start_time=start_time,
                version=__version__,
                default=(images or names)[0],
            )
            self._streams = {}
            for s in streams:
                group = self._create_group(s, codecs[s.name])
                _nexus.describe_records(group, units=s.units, fields=s.fields)
                state = _Stream(s, group, codecs[s.name])
                state.columns = _nexus.link_stream(entry, group, s.fields)
                self._streams[s.name] = state
            for name, dtype in tables.items():
                dataset = self._file.create_dataset(
                    name, shape=(0,), maxshape=(None,), chunks=(64,), dtype=np.dtype(dtype)
                )
                dataset.attrs["rigd_table"] = 1
                self._tables[name] = _Table(dataset)
            self._start_swmr()
        except BaseException:
            self._file.close()
            self.path.unlink(missing_ok=True)
            raise
        self._start_threads(compression_threads)

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        *,
        reason: str = DropReason.RESTART,
        flush_interval: float = 0.5,
        fsync_interval: float = 1.0,
        compression_threads: int | None = None,
        write_buffers: int = 8,
    ) -> RunWriter:
        """Record on into a run file whose recorder crashed (a restarted recorder).

        Repairs the file first (``recover_run``), then appends after the
        frames it holds. The frames the crash lost, and those that come
        before the new recorder's first frame, go in the drop ledger with
        ``reason``.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a rigd run file.
        """
        recover_run(path)
        self = cls.__new__(cls)
        self.path = Path(path)
        self._file = h5py.File(self.path, "r+", libver=LIBVER)
        try:
            attrs = self._file.attrs
            self._init_state(
                _attr_str(attrs, "run_id"), flush_interval, fsync_interval, write_buffers
            )
            streams: dict[str, _Stream] = {}
            for group in _stream_groups(self._file):
                frames = group["frames"]
                compression = _attr_str(frames.attrs, "compression") or None
                spec = StreamSpec(
                    group.name.lstrip("/"),
                    frames.shape[1:],
                    frames.dtype,
                    compression=compression,
                    latency_trace="latency_ns" in group,
                    fields=_nexus.field_names(group),
                    units=_attr_str(frames.attrs, "units", "counts"),
                    kind=_attr_str(group.attrs, "rigd_kind", "frames"),
                )
                state = _Stream(spec, group, codec(compression) if compression else None)
                state.columns = _nexus.field_columns(self._file, group)
                state.k = frames.chunks[0]
                n = len(group["frame_id"])
                state.received = state.written = state.flushed = n
                state.extent = frames.shape[0]
                if state.codec is None:
                    state.offsets = [
                        _chunk_offset(frames, c * state.k)
                        for c in range(-(-state.extent // state.k))
                    ]
                if n:
                    state.next_id = int(group["frame_id"][n - 1]) + 1
                state.gap_reason = str(reason)
                state.dropped_total = int(group["dropped"]["count"].sum())
                if n % state.k:
                    # Carry the partial last chunk on, so it is completed, not lost.
                    first = n - n % state.k
                    state.staging = state.new_chunk()
                    state.staging[: n % state.k] = frames[first:n]
                streams[spec.name] = state
            self._streams = streams
            for name, item in self._file.items():
                if isinstance(item, h5py.Dataset) and "rigd_table" in item.attrs:
                    self._tables[name] = _Table(item)
            attrs["run_state"] = "recording"
            for name in ("frames_recorded", "frames_dropped"):
                for group in _stream_groups(self._file):
                    if name in group.attrs:
                        del group.attrs[name]
            self._start_swmr()
        except BaseException:
            self._file.close()
            raise
        log.warning("%s: recording resumed after a restart (%s)", self.path, reason)
        self._start_threads(compression_threads)
        return self

    def _init_state(
        self, run_id: str, flush_interval: float, fsync_interval: float, write_buffers: int
    ) -> None:
        self.run_id = run_id
        self.write_buffers = write_buffers
        self.flush_interval = flush_interval
        self.fsync_interval = fsync_interval
        self._lock = threading.Lock()
        self._failure: RecordingError | None = None
        self._closed = False
        self._bytes = 0
        self._flushes = 0
        self._fsyncs = 0
        self._max_write_s = 0.0
        self._max_flush_s = 0.0
        self._max_fsync_s = 0.0
        self._tables: dict[str, _Table] = {}

    def _start_swmr(self) -> None:
        self._file.swmr_mode = True
        self._file.flush()
        self._fd = os.dup(self._file.id.get_vfd_handle())

    def _start_threads(self, compression_threads: int | None) -> None:
        # One I/O thread: raw chunks reach the file in order.
        self._io = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="rigd-write")
            if self.write_buffers and any(s.codec is None for s in self._streams.values())
            else None
        )
        self._threads = compression_threads or min(4, os.cpu_count() or 1)
        self._pool = (
            ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="rigd-compress")
            if any(s.codec for s in self._streams.values())
            else None
        )
        self._stop = threading.Event()
        # Wakes the housekeeping thread: at stop, and to flush the run's first
        # frame at once (a run is visible to readers from its first frame, not
        # a flush interval later).
        self._wake = threading.Event()
        self._flush_soon = False
        self._first_flushed = False
        self._keeper = threading.Thread(
            target=self._housekeeping, name=f"rigd-recorder-{self.run_id}", daemon=True
        )
        self._keeper.start()

    def _create_group(self, spec: StreamSpec, codec_: Codec | None) -> h5py.Group:
        group = self._file.create_group(spec.name)
        k = spec.frames_per_chunk
        options: dict[str, Any] = {}
        if codec_ is not None:
            options = {
                "compression": codec_.filter_id,
                "compression_opts": codec_.filter_options,
            }
        if codec_ is not None:
            frames = group.create_dataset(
                "frames",
                shape=(0, *spec.shape),
                maxshape=(None, *spec.shape),
                chunks=(k, *spec.shape),
                dtype=spec.dtype,
                **options,
            )
            frames.attrs["compression"] = codec_.name
        else:
            # Raw chunks get their file space when the extent grows (early
            # allocation, no fill), so their bytes can be written with a
            # plain pwrite, outside HDF5 and its hold on the GIL.
            dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
            dcpl.set_chunk((k, *spec.shape))
            dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
            dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
            space = h5py.h5s.create_simple((0, *spec.shape), (h5py.h5s.UNLIMITED, *spec.shape))
            h5py.h5d.create(
                group.id, b"frames", h5py.h5t.py_create(spec.dtype), space, dcpl=dcpl
            ).close()
        records = {"frame_id": "<u8", "timestamp_ns": "<i8"}
        if spec.latency_trace:
            records["latency_ns"] = "<i8"
        for name, dtype in records.items():
            group.create_dataset(
                name, shape=(0,), maxshape=(None,), chunks=(_RECORD_CHUNK,), dtype=dtype
            )
        group.create_dataset(
            "dropped", shape=(0,), maxshape=(None,), chunks=(256,), dtype=_LEDGER_DTYPE
        )
        group.attrs["rigd_kind"] = spec.kind
        if spec.kind == "messages":
            group.create_dataset(
                "message_bytes",
                shape=(0,),
                maxshape=(None,),
                chunks=(_MESSAGE_CHUNK,),
                dtype=np.uint8,
            )
        return group

    # -- the caller's side ------------------------------------------------------

    def write(
        self, stream: str, frame: np.ndarray[Any, Any], frame_id: int, timestamp_ns: int
    ) -> None:
        """Record one frame. It may be a read-only view (a ring slot): when
        this returns, the writer no longer needs it.

        A frame id that skips ahead puts the skipped ids in the drop ledger
        (reason ``gap``) unless ``note_dropped`` already accounted for them.

        Raises:
            ValueError: the frame's shape or dtype is not the stream's.
            KeyError: no such stream.
            RecordingError: the recording stopped on a write error.
        """
        start = time.perf_counter()
        state = self._stream(stream)
        spec = state.spec
        if frame.shape != spec.shape or frame.dtype != spec.dtype:
            raise ValueError(
                f"stream {stream!r} records {spec.shape} {spec.dtype} frames; "
                f"got {frame.shape} {frame.dtype}"
            )
        with self._lock:
            self._check_writable()
            try:
                self._accept(state, frame, int(frame_id), int(timestamp_ns))
            except Exception as exc:
                raise self._fail(exc) from exc
        took = time.perf_counter() - start
        if took > self._max_write_s:
            self._max_write_s = took

    def write_message(self, stream: str, data: Any, frame_id: int, timestamp_ns: int) -> None:
        """Record one message of a messages stream: ``data`` is its bytes
        (a pickle, as ``pickle.dumps`` makes it), stored as they are.

        Raises:
            ValueError: ``stream`` is not a messages stream, or ``data`` is empty.
            KeyError: no such stream.
            RecordingError: the recording stopped on a write error.
        """
        state = self._stream(stream)
        if state.message_bytes is None:
            raise ValueError(f"stream {stream!r} records {state.spec.kind}, not messages")
        payload = np.frombuffer(data, np.uint8)
        if not payload.size:
            raise ValueError(f"stream {stream!r}: a message has at least one byte")
        with self._lock:
            self._check_writable()
            try:
                start = state.message_size
                stop = start + payload.size
                state.message_bytes.resize((stop,))
                state.message_bytes[start:stop] = payload
                state.message_size = stop
                span = np.array([start, stop], np.uint64)
                self._accept(state, span, int(frame_id), int(timestamp_ns))
            except Exception as exc:
                raise self._fail(exc) from exc

    def note_dropped(self, stream: str, first_id: int, count: int, reason: str) -> None:
        """Put frames the recorder never got in the drop ledger.

        ``count`` may be 0 to log an event (a restart) with no frames lost.
        """
        state = self._stream(stream)
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        with self._lock:
            self._check_writable()
            self._note(state, int(first_id), int(count), str(reason))
            if state.next_id is not None and count and first_id <= state.next_id:
                state.next_id = max(state.next_id, first_id + count)

    def expect_gap(self, stream: str) -> None:
        """The next frame of ``stream`` may skip ids on purpose (a triggered
        recorder's next event): the skip is not a drop."""
        state = self._stream(stream)
        with self._lock:
            state.next_id = None

    def append_row(self, table: str, row: tuple[Any, ...]) -> int:
        """Append a row to a table (see ``tables``); return its index.

        Raises:
            KeyError: no such table.
            RecordingError: the recording stopped on a write error.
        """
        state = self._table(table)
        with self._lock:
            self._check_writable()
            state.pending.append(row)
            return state.count + len(state.pending) - 1

    def update_row(self, table: str, index: int, row: tuple[Any, ...]) -> None:
        """Replace row ``index`` of a table (one appended before).

        Raises:
            KeyError: no such table; IndexError: no such row.
        """
        state = self._table(table)
        with self._lock:
            self._check_writable()
            if not 0 <= index < state.count + len(state.pending):
                raise IndexError(f"table {table!r} has no row {index}")
            if index >= state.count:
                state.pending[index - state.count] = row
            else:
                state.updates[index] = row

    def _table(self, name: str) -> _Table:
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"no table {name!r}; this run file has {sorted(self._tables)}") from None

    def flush(self) -> None:
        """Flush now: every frame written so far becomes visible and crash-safe."""
        with self._lock:
            self._check_writable()
            try:
                self._flush_locked(wait_pending=True)
            except Exception as exc:
                raise self._fail(exc) from exc

    def statistics(self) -> RecorderStatistics:
        with self._lock:
            streams = self._streams.values()
            return RecorderStatistics(
                frames_written={s.spec.name: s.written for s in streams},
                frames_dropped={s.spec.name: s.dropped_total for s in streams},
                bytes_written=self._bytes,
                flushes=self._flushes,
                fsyncs=self._fsyncs,
                max_write_s=self._max_write_s,
                max_flush_s=self._max_flush_s,
                max_fsync_s=self._max_fsync_s,
            )

    @property
    def failed(self) -> RecordingError | None:
        """The error that stopped the recording, if one did."""
        return self._failure

    def close(self) -> None:
        """Write what is left, seal the file (``run_state = "complete"``), close.

        After a write error, closes what it can and leaves the file readable
        with every frame written before the error (``run_state`` stays
        ``recording`` until ``recover_run`` marks it); raises the error again.
        """
        if self._closed:
            if self._failure is not None:
                raise self._failure
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        self._keeper.join()
        error: BaseException | None = self._failure
        with self._lock:
            if error is None:
                try:
                    self._flush_locked(wait_pending=True)
                except Exception as exc:  # noqa: BLE001 - any write error ends the run
                    error = self._fail(exc)
            counts = {name: s.written for name, s in self._streams.items()}
            dropped = {name: s.dropped_total for name, s in self._streams.items()}
            with contextlib.suppress(Exception):
                # After a write error HDF5 may fail here too; the flushed state
                # on disk stays readable either way.
                self._file.close()
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            if self._io is not None:
                self._io.shutdown(wait=True, cancel_futures=True)
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
        if error is not None:
            self._salvage()
            raise error
        self._seal(counts, dropped)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- inside ---------------------------------------------------------------------

    def _stream(self, name: str) -> _Stream:
        try:
            return self._streams[name]
        except KeyError:
            raise KeyError(
                f"no stream {name!r} in {self.path.name}; streams: {sorted(self._streams)}"
            ) from None

    def _check_writable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise RecordingError(f"the recording to {self.path} was closed", str(self.path))

    def _fail(self, exc: BaseException) -> RecordingError:
        if self._failure is None:
            counts = {name: s.flushed for name, s in self._streams.items()}
            # HDF5's messages run over several lines; the errno says it best.
            detail = " ".join(str(exc).split())
            errno = getattr(exc, "errno", None)
            reason = f"{os.strerror(errno)} ({detail})" if errno else detail
            self._failure = RecordingError(
                f"recording to {self.path} stopped: {reason}. The file keeps every frame "
                f"flushed before the error ({counts}); free space or fix the disk, then "
                "start a new run",
                str(self.path),
                counts,
            )
            log.error("%s", self._failure)
        return self._failure

    def _accept(self, state: _Stream, frame: np.ndarray[Any, Any], frame_id: int, ts: int) -> None:
        if state.next_id is not None and frame_id > state.next_id:
            self._note(state, state.next_id, frame_id - state.next_id, state.gap_reason)
        state.gap_reason = DropReason.GAP
        state.next_id = frame_id + 1
        index = state.received
        state.received += 1
        state.ids.append(frame_id)
        state.stamps.append(ts)
        if state.columns:
            state.rows.append(np.array(frame, copy=True))
        k = state.k
        if k == 1:
            if state.codec is None:
                self._grow(state, index + 1)
                self._write_raw(state, index, 1, frame, owned=False)
            else:
                self._submit(state, index, 1, np.array(frame, copy=True))
        else:
            if state.staging is None:
                state.staging = state.new_chunk()
            state.staging[index % k] = frame
            if index % k == k - 1:
                chunk, state.staging = state.staging, None
                self._emit_chunk(state, index // k, k, chunk, owned=True)
        if state.pending:
            self._drain(state, wait=False)
        if not self._first_flushed:
            self._first_flushed = True
            self._flush_soon = True
            self._wake.set()

    def _grow(self, state: _Stream, frames: int) -> None:
        """Make ``frames`` the extent, just before the frames' bytes are written.

        Never ahead of the data: the extent is what a reader takes as the
        number of frames (``f["cam/frames"][-1]``), and it reaches the file
        only at a flush, which comes after the bytes (``_flush_locked``). A
        raw chunk takes its file space when the extent first covers it.
        """
        if frames <= state.extent:
            return
        state.extent = frames
        state.frames.resize(state.extent, axis=0)
        if state.codec is None:
            for chunk in range(len(state.offsets), -(-state.extent // state.k)):
                state.offsets.append(_chunk_offset(state.frames, chunk * state.k))
        if state.codec is None:
            for chunk in range(len(state.offsets), state.extent // state.k):
                state.offsets.append(_chunk_offset(state.frames, chunk * state.k))

    def _emit_chunk(
        self, state: _Stream, chunk_index: int, count: int, chunk: Any, owned: bool
    ) -> None:
        """Write (or hand on) chunk ``chunk_index`` holding ``count`` frames.

        ``owned``: the writer may keep ``chunk`` (a staging buffer it filled).
        """
        first = chunk_index * state.k
        if state.codec is None:
            self._grow(state, first + count)
            self._write_raw(state, first, count, chunk, owned)
        else:
            self._submit(state, first, count, chunk if owned else chunk.copy())

    def _write_raw(
        self, state: _Stream, first: int, count: int, data: np.ndarray[Any, Any], owned: bool
    ) -> None:
        """Put a raw chunk's bytes at its place in the file."""
        offset = state.offsets[first // state.k]
        nbytes = count * state.spec.frame_bytes
        if offset is None:  # a chunk HDF5 did not allocate up front (an older file)
            state.frames.id.write_direct_chunk((first, *(0,) * len(state.spec.shape)), data)
            self._written(state, first + count - state.written, nbytes)
            return
        if self._io is None:
            # The caller's own buffer, no copy; pwrite lets go of the GIL.
            _pwrite_all(self._fd, data, offset)
            self._written(state, first + count - state.written, nbytes)
            return
        # Bounded: when every buffer waits for the disk, the caller waits too.
        while len(state.pending) >= self.write_buffers:
            self._drain(state, wait=True, one=True)
        if owned and data.shape[0] == state.k:
            buffer = data
        else:
            buffer = state.new_chunk()
            np.copyto(buffer.reshape(data.shape), data)
        future = self._io.submit(_pwrite_all, self._fd, buffer, offset)
        state.pending.append((first, count, future, buffer))

    def _submit(self, state: _Stream, first: int, count: int, chunk: Any) -> None:
        assert self._pool is not None
        assert state.codec is not None
        # Bound the chunks in flight: when compression cannot keep up, the
        # caller waits here (back-pressure) rather than memory growing.
        limit = 2 * (self._threads + 1)
        while len(state.pending) >= limit:
            self._drain(state, wait=True, one=True)
        state.pending.append((first, count, self._pool.submit(state.codec.compress, chunk), None))

    def _drain(self, state: _Stream, wait: bool, one: bool = False) -> None:
        """Take finished chunks off the front of the queue, in order."""
        while state.pending:
            first, count, future, buffer = state.pending[0]
            if not wait and not future.done():
                return
            result = future.result()  # a failed write raises here
            state.pending.popleft()
            if state.codec is not None:
                offset = (first, *(0,) * len(state.spec.shape))
                self._grow(state, first + count)
                state.frames.id.write_direct_chunk(offset, result)
                nbytes = len(result)
            else:
                nbytes = count * state.spec.frame_bytes
                if buffer is not None and len(state.spare) < self.write_buffers:
                    state.spare.append(buffer)
            self._written(state, first + count - state.written, nbytes)
            if one:
                return

    def _written(self, state: _Stream, frames: int, nbytes: int) -> None:
        """``frames`` more frames, in order, are now in the file."""
        if frames <= 0:  # a partial chunk rewritten: its frames were counted
            self._bytes += nbytes
            return
        now = time.time_ns()
        base = state.flushed
        for i in range(state.written, state.written + frames):
            if state.latency_ns is not None:
                state.latencies.append(now - state.stamps[i - base])
        state.written += frames
        self._bytes += nbytes

    def _note(self, state: _Stream, first_id: int, count: int, reason: str) -> None:
        encoded = reason.encode("utf-8", "replace")[:_REASON_BYTES]
        state.ledger.append((first_id, count, encoded, time.time_ns()))
        state.dropped_total += count
        log.warning(
            "%s: %d frame(s) from id %d not recorded (%s)", state.spec.name, count, first_id, reason
        )

    def _flush_locked(self, wait_pending: bool) -> bool:
        """Flush; False (nothing flushed) when raw chunks are still being written.

        A raw chunk is in the extent from the moment the I/O thread is given
        it; HDF5 must not publish that extent before the bytes are there.
        """
        start = time.perf_counter()
        if not wait_pending:
            for state in self._streams.values():
                if state.codec is None and state.pending:
                    self._drain(state, wait=False)
                    if state.pending:
                        return False
        for state in self._streams.values():
            if state.pending:
                self._drain(state, wait=wait_pending)
            count = state.received % state.k
            if (
                state.staging is not None
                and count
                and not state.pending
                and state.written < state.received
            ):
                # Write the partial chunk now; it is written again when it fills.
                self._emit_chunk(state, state.received // state.k, count, state.staging, False)
                if wait_pending or state.codec is None:
                    # A raw partial chunk is in the extent: its bytes first.
                    self._drain(state, wait=True)
            self._flush_records(state)
        for table in self._tables.values():
            table.flush()
        self._file.flush()
        self._flushes += 1
        took = time.perf_counter() - start
        if took > self._max_flush_s:
            self._max_flush_s = took
        return True

    def _flush_records(self, state: _Stream) -> None:
        new = state.written - state.flushed
        if new > 0:
            start, stop = state.flushed, state.written
            for dataset, values in (
                (state.frame_id, state.ids),
                (state.timestamp_ns, state.stamps),
                (state.latency_ns, state.latencies),
            ):
                if dataset is None:
                    continue
                dataset.resize(stop, axis=0)
                dataset[start:stop] = np.asarray(values[:new], dtype=dataset.dtype)
                del values[:new]
            if state.columns:
                rows = np.stack(state.rows[:new])
                for k, column in enumerate(state.columns.values()):
                    column.resize(stop, axis=0)
                    column[start:stop] = rows[:, k]
                del state.rows[:new]
            state.flushed = stop
        if state.ledger:
            rows = np.array(state.ledger, dtype=_LEDGER_DTYPE)
            n = state.dropped.shape[0]
            state.dropped.resize(n + len(rows), axis=0)
            state.dropped[n:] = rows
            state.ledger.clear()

    def _housekeeping(self) -> None:
        now = time.monotonic()
        next_flush = now + self.flush_interval
        next_fsync = now + self.fsync_interval
        next_writeback = now + _WRITEBACK_S
        while True:
            self._wake.wait(
                max(0.0, min(next_flush, next_fsync, next_writeback) - time.monotonic())
            )
            self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            if self._flush_soon:
                self._flush_soon = False
                next_flush = now
            if now >= next_writeback:
                # Start writing dirty pages out now, so an fsync finds little
                # left: a long fsync holds the filesystem's journal, and
                # ``write`` waits on the journal (ext4: 100+ ms stalls).
                next_writeback = now + _WRITEBACK_S
                _start_writeback(self._fd)
            if now >= next_flush:
                next_flush = now + self.flush_interval
                with self._lock:
                    if self._failure is None and not self._closed:
                        try:
                            if not self._flush_locked(wait_pending=False):
                                next_flush = now + _FLUSH_RETRY_S
                        except Exception as exc:  # noqa: BLE001 - any write error ends the run
                            self._fail(exc)
            if now >= next_fsync:
                next_fsync = now + self.fsync_interval
                start = time.perf_counter()
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    with self._lock:
                        self._fail(exc)
                    return
                self._fsyncs += 1
                self._max_fsync_s = max(self._max_fsync_s, time.perf_counter() - start)

    def _seal(self, counts: Mapping[str, int], dropped: Mapping[str, int]) -> None:
        # Without HDF5's file lock: a SWMR reader (a viewer left open) holds a shared
        # lock on the file, and a run must still seal with readers attached. The
        # writer is closed, so nothing else writes; readers see the sealed file.
        with h5py.File(self.path, "r+", locking=False) as f:
            for name, n in counts.items():
                group = f[name]
                group["frames"].resize(n, axis=0)
                group.attrs["frames_recorded"] = n
                group.attrs["frames_dropped"] = dropped[name]
            stop_time = _utc_now_iso()
            f.attrs["stop_time"] = stop_time
            f.attrs["run_state"] = "complete"
            _nexus.seal_entry(f, end_time=stop_time)
        with open(self.path, "rb") as f:
            os.fsync(f.fileno())

    def _salvage(self) -> None:
        """After a write error: make the file openable by any HDF5 reader."""
        try:
            recover_run(self.path)
        except Exception as exc:  # noqa: BLE001 - the disk may still be full: say so
            log.error(
                "%s could not be sealed after the error (%s); run `rigd recover %s` "
                "once the disk has space",
                self.path,
                exc,
                self.path,
            )


class StreamReader:
    """One stream of a run file, frame by frame: what ``FilePlayback`` replays.

    Opens the file live (SWMR) when a writer still has it.
    """

    def __init__(self, path: str | os.PathLike[str], stream: str | None = None) -> None:
        """Raises:
        FileNotFoundError: no such file.
        ValueError: not a run file, or no such stream (the message lists them).
        """
        self._file = _open_for_reading(path)
        try:
            groups = {g.name.lstrip("/"): g for g in _stream_groups(self._file)}
            if not groups:
                raise ValueError(f"{path} holds no recorded stream")
            if stream is None:
                if len(groups) > 1:
                    raise ValueError(f"{path} holds streams {sorted(groups)}; name the one to play")
                stream = next(iter(groups))
            if stream not in groups:
                raise ValueError(f"{path} has no stream {stream!r}; it has {sorted(groups)}")
            group = groups[stream]
            self.name = stream
            self._frames = group["frames"]
            self.frame_ids = group["frame_id"][:]
            self.timestamps_ns = group["timestamp_ns"][: len(self.frame_ids)]
            self.shape: tuple[int, ...] = tuple(self._frames.shape[1:])
            self.dtype = np.dtype(self._frames.dtype)
        except BaseException:
            self._file.close()
            raise

    def __len__(self) -> int:
        return len(self.frame_ids)

    def read_into(self, index: int, out: np.ndarray[Any, Any]) -> None:
        """Read frame ``index`` straight into ``out`` (a ring slot): no extra copy."""
        self._frames.read_direct(out, source_sel=np.s_[index])

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _chunk_offset(frames: h5py.Dataset, first: int) -> int | None:
    """Where in the file the chunk holding frame ``first`` lives (None: not allocated)."""
    info = frames.id.get_chunk_info_by_coord((first, *(0,) * (frames.ndim - 1)))
    return None if info.byte_offset is None else int(info.byte_offset)


def _pwrite_all(fd: int, data: np.ndarray[Any, Any], offset: int) -> None:
    """Write all of ``data`` at ``offset`` (os.pwrite may write less)."""
    view = np.ascontiguousarray(data).data.cast("B")
    while view:
        done = os.pwrite(fd, view, offset)
        view = view[done:]
        offset += done


def _load_sync_file_range() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):  # not Linux: fsync alone will do
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def _start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's dirty pages, without waiting."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)


# -- reading and repairing ---------------------------------------------------------


def _open_for_reading(path: str | os.PathLike[str]) -> h5py.File:
    """Open a run file read-only, live (SWMR read) when a writer has it open."""
    if read_superblock(path).open_for_write:
        return h5py.File(path, "r", libver=LIBVER, swmr=True)
    return h5py.File(path, "r")


def _attr_str(attrs: Any, key: str, default: str = "") -> str:
    value = attrs.get(key, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def _stream_groups(f: h5py.File) -> list[h5py.Group]:
    return [
        g for g in f.values() if isinstance(g, h5py.Group) and "frames" in g and "frame_id" in g
    ]


def inspect_run(path: str | os.PathLike[str]) -> RunSummary:
    """Summarise a run file: streams, frames, rate, drops, state, metadata.

    Works on a file still being recorded (it reads it live, in SWMR mode).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not HDF5, or not a rigd run file.
    """
    with _open_for_reading(path) as f:
        if "run_id" not in f.attrs:
            raise ValueError(f"{path} is an HDF5 file but not a rigd run (no run_id attribute)")
        streams = tuple(_summarise_stream(g) for g in _stream_groups(f))
        metadata = {
            k: (v.tolist() if isinstance(v, np.ndarray) else v)
            for k, v in f.attrs.items()
            if k not in RESERVED_ATTRIBUTES
        }
        attrs = f.attrs
        return RunSummary(
            path=os.fspath(path),
            run_id=_attr_str(attrs, "run_id"),
            run_state=_attr_str(attrs, "run_state", "unknown"),
            start_time=_attr_str(attrs, "start_time"),
            stop_time=_attr_str(attrs, "stop_time"),
            host=_attr_str(attrs, "host"),
            rigd_version=_attr_str(attrs, "rigd_version"),
            streams=streams,
            metadata=metadata,
            pipeline=_attr_str(attrs, "pipeline"),
            nexus=_nexus.summarise(f),
        )


def _summarise_stream(group: h5py.Group) -> StreamSummary:
    ids = group["frame_id"][:]
    n = len(ids)
    stamps = group["timestamp_ns"][:n]
    duration = (int(stamps[-1]) - int(stamps[0])) / 1e9 if n > 1 else 0.0
    ledger_rows = group["dropped"][:]
    ledger = tuple(
        (int(r["first_id"]), int(r["count"]), r["reason"].decode("utf-8", "replace"))
        for r in ledger_rows
    )
    p50 = p99 = None
    if "latency_ns" in group and n:
        lat = group["latency_ns"][:n]
        if len(lat):
            p50, p99 = (float(v) / 1e6 for v in np.percentile(lat, [50, 99]))
    frames = group["frames"]
    return StreamSummary(
        name=group.name.lstrip("/"),
        frames=n,
        shape=tuple(frames.shape[1:]),
        dtype=str(frames.dtype),
        compression=_attr_str(frames.attrs, "compression") or None,
        first_frame_id=int(ids[0]) if n else None,
        last_frame_id=int(ids[-1]) if n else None,
        duration_s=duration,
        rate_hz=(n - 1) / duration if duration > 0 else 0.0,
        dropped=sum(count for _, count, _ in ledger),
        ledger=ledger,
        latency_p50_ms=p50,
        latency_p99_ms=p99,
    )


def export_nwb(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    link: bool = True,
    compression: bool = False,
    metadata: Mapping[str, Any] | None = None,
    imaging: Mapping[str, str] | None = None,
) -> Path:
    """Export a sealed run file to NWB (``_nwb`` says what goes where).

    Args:
        link: camera frames as external links to ``run`` (nothing copied;
            keep the files together); False copies them, one frame per chunk.
        compression: with ``link=False``, gzip the copied frames.
        metadata: run metadata to add or replace (``session_description``,
            ``subject_id``, ``species``, ``age``, ...).
        imaging: ``{stream: "one_photon" | "two_photon"}``: streams that are
            microscope images (``OnePhotonSeries``/``TwoPhotonSeries``).

    Returns:
        The NWB file's path.

    Raises:
        FileExistsError: ``out`` exists.
        ValueError: not a rigd run, still being recorded, or required
            metadata missing (the message names each field).
        ImportError: pynwb is not installed (``pip install 'rigd[nwb]'``).
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; give a new file name for the NWB export")
    try:
        from rigd.storage import _nwb
    except ImportError as exc:
        raise ImportError(
            f"NWB export needs pynwb ({exc}); install it with pip install 'rigd[nwb]'"
        ) from exc
    if read_superblock(run).open_for_write:
        raise ValueError(f"{run} is still being recorded; export it once the run has stopped")
    with h5py.File(run, "r") as f:
        if "run_id" not in f.attrs:
            raise ValueError(f"{run} is an HDF5 file but not a rigd run (no run_id attribute)")
        streams = _stream_groups(f)
        # NWB has no place for structured records or pickled messages: they
        # stay in the run file (read them with h5py, README "Link kinds").
        skipped = [g.name for g in streams if _attr_str(g.attrs, "rigd_kind", "frames") != "frames"]
        if skipped:
            log.warning("%s: streams %s are records or messages, not exported to NWB", run, skipped)
        _nwb.write_nwb(
            f,
            [g for g in streams if g.name not in skipped],
            out,
            link=link,
            compression=compression,
            metadata=metadata,
            imaging=imaging,
        )
    return out


def recover_run(path: str | os.PathLike[str]) -> RecoveryReport:
    """Repair a run file a crashed writer left unsealed; mark it ``recovered``.

    Clears the writer's open-for-write mark (as ``h5clear -s``), trims every
    stream to the frames whose records and data both reached the file (what
    was flushed), and records the frame counts. A sealed file is left alone.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not HDF5 or not a rigd run file.
        OSError: the file cannot be written (it is still open by a live
            writer's process, or the disk is full).
    """
    path = Path(path)
    repaired = repair_superblock(path)
    with h5py.File(path, "r+") as f:
        if "run_id" not in f.attrs:
            raise ValueError(f"{path} is an HDF5 file but not a rigd run (no run_id attribute)")
        state = _attr_str(f.attrs, "run_state", "unknown")
        if state in ("complete", "recovered") and not repaired:
            counts = {g.name.lstrip("/"): len(g["frame_id"]) for g in _stream_groups(f)}
            return RecoveryReport(str(path), state, repaired=False, frames=counts)
        counts = {}
        for group in _stream_groups(f):
            columns = _nexus.field_columns(f, group)
            n = min([_recoverable_frames(group), *(c.shape[0] for c in columns.values())])
            for name in ("frames", "frame_id", "timestamp_ns", "latency_ns"):
                if name in group:
                    group[name].resize(n, axis=0)
            for column in columns.values():
                column.resize(n, axis=0)
            counts[group.name.lstrip("/")] = n
            group.attrs["frames_recorded"] = n
            group.attrs["frames_dropped"] = int(group["dropped"]["count"].sum())
        f.attrs["run_state"] = "recovered"
        f.attrs["recovered_time"] = _utc_now_iso()
        _nexus.seal_entry(f, end_time=f.attrs["recovered_time"])
        log.info("recovered %s: %s frame(s) per stream", path, counts)
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
    return RecoveryReport(str(path), "recovered", repaired=True, frames=counts)


def _recoverable_frames(group: h5py.Group) -> int:
    """Frames with both their records and their data chunk in the file."""
    n = min(group[name].shape[0] for name in ("frame_id", "timestamp_ns") if name in group)
    if "latency_ns" in group:
        n = min(n, group["latency_ns"].shape[0])
    frames = group["frames"]
    n = min(n, frames.shape[0])
    k = frames.chunks[0]
    zeros = (0,) * (frames.ndim - 1)
    # A crash inside a flush could write a record before its chunk's index
    # entry: walk back to the last frame whose chunk is really there.
    while (
        n > 0 and frames.id.get_chunk_info_by_coord(((n - 1) // k * k, *zeros)).byte_offset is None
    ):
        n = (n - 1) // k * k
    return int(n)
