"""What a run writer keeps per stream and per table between flushes.

``StreamState`` owns one stream's datasets, its counters (received,
written, flushed), the records of frames not yet flushed, its drop ledger
and its chunks in flight; ``TableRows`` a table's rows waiting for the next
flush. Both are touched only under the writer's lock.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future
from typing import Any

import numpy as np

from rigd.storage import _nexus
from rigd.storage._codecs import Codec, codec
from rigd.storage._direct_io import aligned_empty
from rigd.storage._h5file import attr_str, chunk_offset, require_filter
from rigd.storage._run_layout import LEDGER_DTYPE, REASON_BYTES, DropReason, StreamSpec

log = logging.getLogger(__name__)


class StreamState:
    """The writer's state for one stream. Touched under the writer's lock."""

    def __init__(self, spec: StreamSpec, group: Any, codec_: Codec | None) -> None:
        self.spec = spec
        self.codec = codec_
        self.k = spec.frames_per_chunk
        self.frames = group["frames"]
        self.frame_id = group["frame_id"]
        self.timestamp_ns = group["timestamp_ns"]
        self.latency_ns = group["latency_ns"] if spec.latency_trace else None
        self.dropped = group["dropped"]
        #: A messages stream's bytes, and how many it holds.
        self.message_bytes: Any = group.get("message_bytes")
        self.message_size = 0 if self.message_bytes is None else len(self.message_bytes)
        #: A records stream's field datasets (``/entry/<stream>/<field>``), and
        #: the rows not yet flushed to them.
        self.columns: dict[str, Any] = {}
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

    @classmethod
    def reopen(cls, f: Any, group: Any, reason: str) -> StreamState:
        """The state of a stream of a repaired run file, to record on after
        its frames; the next gap in frame ids goes in the ledger as ``reason``."""
        frames = group["frames"]
        compression = attr_str(frames.attrs, "compression") or None
        spec = StreamSpec(
            group.name.lstrip("/"),
            frames.shape[1:],
            frames.dtype,
            compression=compression,
            latency_trace="latency_ns" in group,
            fields=_nexus.field_names(group),
            units=attr_str(frames.attrs, "units", "counts"),
            kind=attr_str(group.attrs, "rigd_kind", "frames"),
        )
        found = codec(compression) if compression else None
        if found is not None:
            require_filter(found)
        state = cls(spec, group, found)
        state.columns = _nexus.field_columns(f, group)
        state.k = frames.chunks[0]
        n = len(group["frame_id"])
        state.received = state.written = state.flushed = n
        state.extent = frames.shape[0]
        if state.codec is None:
            state.offsets = [
                chunk_offset(frames, c * state.k) for c in range(-(-state.extent // state.k))
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
        return state

    def new_chunk(self) -> np.ndarray[Any, Any]:
        """A chunk-sized buffer (staging for small frames, or for the I/O thread)."""
        if self.spare:
            return self.spare.pop()
        # Aligned, so the I/O thread can write it with O_DIRECT (``_direct_io``).
        return aligned_empty((self.k, *self.spec.shape), self.spec.dtype)

    def grow(self, frames: int) -> None:
        """Make ``frames`` the extent, just before the frames' bytes are written.

        Never ahead of the data: the extent is what a reader takes as the
        number of frames (``f["cam/frames"][-1]``), and it reaches the file
        only at a flush, which comes after the bytes (``RunWriter``'s flush).
        A raw chunk takes its file space when the extent first covers it.
        """
        if frames <= self.extent:
            return
        self.extent = frames
        self.frames.resize(self.extent, axis=0)
        if self.codec is None:
            for chunk in range(len(self.offsets), -(-self.extent // self.k)):
                self.offsets.append(chunk_offset(self.frames, chunk * self.k))

    def mark_written(self, frames: int) -> None:
        """``frames`` more frames, in order, are now in the file."""
        now = time.time_ns()
        base = self.flushed
        for i in range(self.written, self.written + frames):
            if self.latency_ns is not None:
                self.latencies.append(now - self.stamps[i - base])
        self.written += frames

    def note(self, first_id: int, count: int, reason: str) -> None:
        """Put ``count`` frames from ``first_id`` in the drop ledger."""
        encoded = reason.encode("utf-8", "replace")[:REASON_BYTES]
        self.ledger.append((first_id, count, encoded, time.time_ns()))
        self.dropped_total += count
        log.warning(
            "%s: %d frame(s) from id %d not recorded (%s)", self.spec.name, count, first_id, reason
        )

    def flush_records(self) -> None:
        """Write the records of the frames written since the last flush, and the ledger."""
        new = self.written - self.flushed
        if new > 0:
            start, stop = self.flushed, self.written
            for dataset, values in (
                (self.frame_id, self.ids),
                (self.timestamp_ns, self.stamps),
                (self.latency_ns, self.latencies),
            ):
                if dataset is None:
                    continue
                dataset.resize(stop, axis=0)
                dataset[start:stop] = np.asarray(values[:new], dtype=dataset.dtype)
                del values[:new]
            if self.columns:
                rows = np.stack(self.rows[:new])
                for k, column in enumerate(self.columns.values()):
                    column.resize(stop, axis=0)
                    column[start:stop] = rows[:, k]
                del self.rows[:new]
            self.flushed = stop
        if self.ledger:
            rows = np.array(self.ledger, dtype=LEDGER_DTYPE)
            n = self.dropped.shape[0]
            self.dropped.resize(n + len(rows), axis=0)
            self.dropped[n:] = rows
            self.ledger.clear()


class TableRows:
    """A table's rows waiting for the next flush."""

    def __init__(self, dataset: Any) -> None:
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
