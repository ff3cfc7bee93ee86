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

#: The first ledger entries of a stream are logged one by one; then at most one
#: line this often, with the totals (the ledger in the file has every entry).
_LOG_FIRST = 5
_LOG_EVERY_S = 10.0


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
        #: Every id below ``next_id`` is accounted for: recorded, in the drop
        #: ledger, or skipped on purpose (``expect_gap``); ``None``: no expectation.
        self.next_id: int | None = None
        #: The id of the last frame recorded (ids must increase).
        self.last_id: int | None = None
        #: ``[first, end)`` spans in the ledger at or above ``next_id``, sorted,
        #: disjoint (a source's drop note ahead of the recorder's frames).
        self.noted: list[tuple[int, int]] = []
        #: Why the next gap in frame ids happened, when known (a restart).
        self.gap_reason: str = DropReason.GAP
        self.ledger: list[tuple[int, int, bytes, int]] = []
        self.noted_total = 0  # ledger entries, flushed or not
        self._log_at = 0.0
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
            state.last_id = int(group["frame_id"][n - 1])
            state.next_id = state.last_id + 1
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

    def check_id(self, frame_id: int) -> None:
        """Refuse a frame id that would be recorded twice, or in the file and
        in the drop ledger both (README, "Recording": each id once).

        Raises:
            ValueError: ``frame_id`` is not above the last recorded one, or is
                one the drop ledger already has.
        """
        name = self.spec.name
        if self.last_id is not None and frame_id <= self.last_id:
            raise ValueError(
                f"stream {name!r}: frame id {frame_id} is not above the last one recorded "
                f"({self.last_id}); frame ids must increase, each recorded once "
                "(the frame was not recorded; the run goes on)"
            )
        below = self.next_id is not None and frame_id < self.next_id
        if below or any(first <= frame_id < end for first, end in self.noted):
            raise ValueError(
                f"stream {name!r}: frame id {frame_id} is already in the drop ledger "
                "(noted as not recorded); a frame id is recorded or dropped, not both "
                "(the frame was not recorded; the run goes on)"
            )

    def accept_id(self, frame_id: int) -> None:
        """``frame_id`` (``check_id`` passed) is recorded: the ids skipped before
        it that the ledger lacks go in as ``gap_reason``."""
        if self.next_id is not None and frame_id > self.next_id:
            for first, count in self._uncovered(self.next_id, frame_id):
                self.note(first, count, self.gap_reason)
        self.gap_reason = DropReason.GAP
        self.noted = [span for span in self.noted if span[0] > frame_id]
        self.last_id = frame_id
        self.next_id = frame_id + 1
        self._absorb()

    def note_dropped(self, first_id: int, count: int, reason: str) -> None:
        """Put the ids of ``[first_id, first_id + count)`` that are neither
        recorded nor in the ledger yet in the ledger, as ``reason`` (so two
        accounts of one id, a source's note and the recorder's own, count it
        once). ``count`` 0 is an event row, kept as given."""
        if not count:
            self.note(first_id, 0, reason)
            return
        after_last = None if self.last_id is None else self.last_id + 1
        floor = max((x for x in (self.next_id, after_last) if x is not None), default=first_id)
        pieces = self._uncovered(max(first_id, floor), first_id + count)
        for first, n in pieces:
            self.note(first, n, reason)
        self.noted = sorted(self.noted + [(first, first + n) for first, n in pieces])
        self._absorb()

    def _uncovered(self, start: int, stop: int) -> list[tuple[int, int]]:
        """The ``(first, count)`` runs of ``[start, stop)`` outside ``noted``."""
        pieces: list[tuple[int, int]] = []
        position = start
        for first, end in self.noted:
            if end <= position:
                continue
            if first >= stop:
                break
            if first > position:
                pieces.append((position, first - position))
            position = max(position, end)
        if stop > position:
            pieces.append((position, stop - position))
        return pieces

    def _absorb(self) -> None:
        """Move ``next_id`` over the noted spans that now start at or below it."""
        if self.next_id is None:
            return
        while self.noted and self.noted[0][0] <= self.next_id:
            self.next_id = max(self.next_id, self.noted.pop(0)[1])

    def note(self, first_id: int, count: int, reason: str) -> None:
        """Put ``count`` frames from ``first_id`` in the drop ledger, as given."""
        encoded = reason.encode("utf-8", "replace")[:REASON_BYTES]
        self.ledger.append((first_id, count, encoded, time.time_ns()))
        self.dropped_total += count
        self.noted_total += 1
        if count == 0:
            # An event (an actor restarted, a run resumed), not a loss: said as one.
            log.info(
                "%s: at frame id %d: %s (an event in the drop ledger; no frame lost)",
                self.spec.name,
                first_id,
                reason,
            )
            return
        now = time.monotonic()
        if self.noted_total <= _LOG_FIRST:
            log.warning(
                "%s: %d frame(s) from id %d not recorded (%s)",
                self.spec.name,
                count,
                first_id,
                reason,
            )
        elif now >= self._log_at:
            log.warning(
                "%s: %d frame(s) from id %d not recorded (%s); %d ledger entries, %d frame(s) "
                "so far (at most one line per %g s; every entry is in the run file's ledger)",
                self.spec.name,
                count,
                first_id,
                reason,
                self.noted_total,
                self.dropped_total,
                _LOG_EVERY_S,
            )
        if self.noted_total >= _LOG_FIRST and now >= self._log_at:
            self._log_at = now + _LOG_EVERY_S

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
