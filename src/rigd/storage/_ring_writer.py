"""The ring's one writer: claims slots, waits for space, commits and wakes.

Back-pressure: a lossless reader's cursor holds the writer back; the writer
sleeps on the ``space`` futex (in ``CHECK_S`` slices, so a dead reader is
noticed and dropped) rather than overwrite a frame that reader has not
released. Each commit bumps the ``data`` futex and wakes only if a reader
has flagged itself asleep; each claimed slot is announced first, so
low-latency readers wake while it is filled (``_ring_wait``).
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Self

import numpy as np

from rigd._exceptions import RingClosedError, WouldBlock
from rigd._proc import pid_alive
from rigd.storage._futex import futex_wait, futex_wake
from rigd.storage._ring_layout import WRITING, ReaderRecord, ReaderState
from rigd.storage._ring_notes import OWN_IDS, write_note
from rigd.storage._ring_segment import RingSegment
from rigd.storage._ring_wait import CHECK_S


class RingWriter:
    """The one writer of a ring: ``put`` copies a frame in, ``slot`` fills one in place."""

    def __init__(self, segment: RingSegment) -> None:
        self._seg = segment
        self._hdr = segment.hdr
        self._closed = False
        # Frames below this sequence number have a free slot for sure (no
        # lossless reader can be a whole ring behind them): most frames skip
        # the scan of the reader records, which matters for a frame's latency
        # more than its cost suggests (it is code and memory a 100 Hz writer
        # finds cold).
        self._space_until = 0
        self._open: _OpenSlot | None = None
        # A run of frames dropped on a full ring (``skip``), not yet in a drop
        # note: (first_id, count); noted before the next commit, or at close.
        self._skips: tuple[int, int] | None = None
        # The slots' pages mapped now, not one fault at a time in the first lap.
        segment.populate()

    @property
    def previous(self) -> tuple[int, int] | None:
        """The last frame a writer committed to this ring before this one
        attached, as ``(frame_id, timestamp_ns)``, or None for a new ring.

        A source restarted after a crash reads it to go on numbering its
        frames after the last one, instead of from 0 (ids stay unique and
        increasing in the ring and in the run file).
        """
        head = int(self._hdr.head)
        if head == 0:
            return None
        meta = self._seg.meta[(head - 1) % self._seg.slot_count]
        if meta.seq != head:
            return None  # being overwritten: no committed frame to read
        return int(meta.frame_id), int(meta.timestamp_ns)

    @property
    def committed(self) -> int:
        """Frames committed to this ring so far, by this writer and any before it
        (a restarted source counts on from the frames it delivered before)."""
        return int(self._hdr.head)

    def put(
        self,
        array: np.ndarray[Any, Any],
        frame_id: int | None = None,
        timestamp_ns: int | None = None,
        timeout: float | None = None,
    ) -> int:
        """Copy ``array`` into the next slot and commit it; return its sequence number.

        Waits while a lossless reader is a whole ring behind.

        Raises:
            ValueError: ``array`` has another shape or dtype than the ring.
            TimeoutError: still no free slot after ``timeout`` seconds.
            RingClosedError: the writer was closed.
        """
        seg = self._seg
        if array.shape != seg.shape or (array.dtype is not seg.dtype and array.dtype != seg.dtype):
            raise ValueError(
                f"frame of shape {array.shape} and dtype {array.dtype} does not fit ring "
                f"{seg.name!r}, which holds shape {seg.shape} and dtype {seg.dtype}"
            )
        seq = self._begin(timeout)
        try:
            np.copyto(seg.views[seq % seg.slot_count], array, casting="no")
        except BaseException:
            self._abandon(seq)
            raise
        self._commit(seq, frame_id, timestamp_ns)
        return seq

    def put_nowait(
        self,
        array: np.ndarray[Any, Any],
        frame_id: int | None = None,
        timestamp_ns: int | None = None,
    ) -> int:
        """Like ``put``, but raise ``WouldBlock`` instead of waiting for a slot."""
        try:
            return self.put(array, frame_id, timestamp_ns, timeout=0)
        except TimeoutError:
            raise WouldBlock(
                f"ring {self._seg.name!r} is full: a lossless reader is a whole ring behind"
            ) from None

    def skip(self, frame_id: int, count: int = 1) -> None:
        """Say the source dropped ``count`` frames from ``frame_id`` because the ring
        was full.

        A camera cannot be held back: it calls ``slot(..., timeout=0)`` and, on
        ``TimeoutError`` (a lossless reader still holds the slot), drops the
        frame and calls this. The ring counts the drops
        (``RingStatistics.frames_skipped``); consecutive ones become one drop note
        with reason ``ring_full`` (``note_dropped``), written before the next
        frame is committed or when the stream closes, so the recorder puts them
        in its ledger as ``ring_full`` rather than as an unexplained gap.

        Raises:
            ValueError: ``count`` under 1 or ``frame_id`` negative.
        """
        if count < 1 or frame_id < 0:
            raise ValueError(
                f"skip needs frame_id >= 0 and count >= 1, got {frame_id!r} and {count!r}"
            )
        self._hdr.writer_skips += count
        run = self._skips
        if run is not None and run[0] + run[1] == frame_id:
            self._skips = (run[0], run[1] + count)
            return
        self._note_skips()
        self._skips = (int(frame_id), int(count))

    def _note_skips(self) -> None:
        if self._skips is not None:
            write_note(self._hdr, self._skips[0], self._skips[1], "ring_full")
            self._skips = None

    def slot(
        self,
        frame_id: int | None = None,
        timestamp_ns: int | None = None,
        timeout: float | None = None,
    ) -> AbstractContextManager[np.ndarray[Any, Any]]:
        """Yield the next slot as a writable array; commit it on normal exit.

        On an exception the slot is abandoned (no frame is committed) and the
        exception propagates. ``frame_id`` defaults to the sequence number,
        ``timestamp_ns`` to the commit time, in ns since the epoch
        (``time.time_ns()``, the clock run files store): a camera whose
        frame is complete when the slot is committed need not pass one.
        """
        return _OpenSlot(self, frame_id, timestamp_ns, timeout)

    def note_dropped(self, first_id: int, count: int, reason: str) -> None:
        """Say that ``count`` frame ids from ``first_id`` will never be written, and why.

        A source that drops a frame instead of writing it (a camera's
        incomplete buffer, a full ring) calls this before it commits a later
        frame; the recorder puts the ids in the run file's drop ledger with
        ``reason`` (``_ring_notes``). Readers keep the newest 64 notes.

        Raises:
            ValueError: ``count`` under 1, or ``reason`` not 1 to 24 ASCII characters.
            RingClosedError: the writer was closed.
        """
        if self._closed:
            raise RingClosedError(f"the writer of ring {self._seg.name!r} was closed")
        self._note_skips()  # notes stay in the order of their ids
        write_note(self._hdr, int(first_id), int(count), reason)

    def own_ids(self) -> None:
        """Say that this ring's frame ids are its source's own numbering (a
        network sender's: every other frame, from 10, ...): ids it skips are not
        frames lost. Call it before the first frame; the recorder then records
        the ids as they are and puts no ``gap`` in its ledger for the ids between
        (``OWN_IDS``, a marker among the drop notes; other notes keep their meaning).

        Raises:
            RingClosedError: the writer was closed.
        """
        if self._closed:
            raise RingClosedError(f"the writer of ring {self._seg.name!r} was closed")
        self._note_skips()
        write_note(self._hdr, 0, 1, OWN_IDS)

    def ready(self) -> bool:
        """Whether the next ``put`` or ``slot`` would find a free slot now, without
        waiting for a lossless reader (a closed writer is ready: it raises at once).

        For a scheduler that steps several actors on one thread (see
        ``RingReader.ready``).
        """
        if self._closed:
            return True
        seq: int = self._hdr.head  # an int: ctypes reads its integer fields as ints
        return seq < self._space_until or not self._blocking(seq)

    def _begin(self, timeout: float | None) -> int:
        """Claim the next slot (waiting for space) and announce its frame."""
        if self._closed:
            raise RingClosedError(f"the writer of ring {self._seg.name!r} was closed")
        if self._open is not None:
            raise RuntimeError("commit or abandon the open slot before opening another")
        hdr = self._hdr
        seq: int = hdr.head
        if seq >= self._space_until:
            self._wait_for_space(seq, timeout)
        # The frame is on its way: low-latency readers wake while it is filled.
        self.announce()
        self._seg.meta[seq % self._seg.slot_count].seq = WRITING
        return seq

    def _abandon(self, seq: int) -> None:
        self._seg.meta[seq % self._seg.slot_count].seq = 0

    def _commit(self, seq: int, frame_id: int | None, timestamp_ns: int | None) -> None:
        now = time.monotonic_ns()
        seg = self._seg
        hdr = self._hdr
        meta = seg.meta[seq % seg.slot_count]
        meta.frame_id = seq if frame_id is None else frame_id
        meta.timestamp_ns = time.time_ns() if timestamp_ns is None else timestamp_ns
        meta.nbytes = seg.frame_nbytes
        meta.commit_ns = now
        if self._skips is not None:
            self._note_skips()  # before the frame: its readers have the note
        meta.seq = seq + 1
        hdr.head = seq + 1
        hdr.data_futex = (hdr.data_futex + 1) & 0xFFFFFFFF
        # A slice is a list: any() over it costs half of any() over the ctypes array.
        if any(seg.waiting_words[:]):
            futex_wake(seg.data_addr)

    def announce(self) -> None:
        """Say the next frame is on its way, before the work that makes it.

        Low-latency readers wake now and spin for the commit (for at most
        250 us), so the kernel's wake-up overlaps that work instead of adding
        to the frame's latency. ``slot`` announces when it opens; a
        processor announces its output when it takes its input (a pipeline
        actor with one input does this itself). Without low-latency readers
        it costs a few stores.
        """
        hdr = self._hdr
        head = hdr.head
        if self._closed or hdr.announced > head:
            return  # the stream ended, or the frame was announced already
        hdr.announced = head + 1
        hdr.announce_futex = (hdr.announce_futex + 1) & 0xFFFFFFFF
        if any(self._seg.announce_words[:]):  # a list: see _commit
            futex_wake(self._seg.announce_addr)

    def _blocking(self, seq: int) -> list[ReaderRecord]:
        """The lossless readers a whole ring behind frame ``seq`` (its slot is
        theirs still). With none, frames below the lowest reader's cursor plus
        ``slot_count`` have a free slot for sure (``_space_until``): readers
        only move on, and a new one starts at the head."""
        seg = self._seg
        blocking = []
        lowest = seq
        for rec in seg.readers:
            if rec.state == ReaderState.ACTIVE and rec.policy == 0:
                cursor = int(rec.cursor)
                if seq - cursor >= seg.slot_count:
                    blocking.append(rec)
                lowest = min(lowest, cursor)
        if not blocking:
            self._space_until = lowest + seg.slot_count
        return blocking

    def _wait_for_space(self, seq: int, timeout: float | None) -> None:
        seg = self._seg
        hdr = self._hdr
        deadline = None if timeout is None else time.monotonic() + timeout
        waited_from = 0
        try:
            while True:
                expected = hdr.space_futex
                blocking = self._blocking(seq)
                if not blocking:
                    return
                if not waited_from:
                    waited_from = time.monotonic_ns()
                    hdr.writer_waits += 1
                left = CHECK_S if deadline is None else min(CHECK_S, deadline - time.monotonic())
                if left <= 0:
                    # A reader that died holds nothing: a writer that does
                    # not wait (a camera) must not drop every frame for it.
                    dead = [rec for rec in blocking if not pid_alive(int(rec.pid))]
                    for rec in dead:
                        seg.drop_reader(rec)
                    if dead:
                        continue
                    raise TimeoutError(
                        f"no free slot in ring {seg.name!r} within {timeout} s: a lossless "
                        "reader is a whole ring behind"
                    )
                hdr.writer_waiting = 1
                if not futex_wait(seg.space_addr, expected, left):
                    for rec in blocking:
                        if not pid_alive(int(rec.pid)):
                            seg.drop_reader(rec)
        finally:
            hdr.writer_waiting = 0
            if waited_from:
                hdr.writer_wait_ns += time.monotonic_ns() - waited_from

    def close(self) -> None:
        """End the stream: readers drain what is left, then get ``EndOfStream``."""
        if self._closed:
            return
        self._closed = True
        hdr = self._hdr
        self._note_skips()  # frames dropped after the last commit
        hdr.closed = 1
        hdr.writer_pid = 0
        hdr.data_futex = (hdr.data_futex + 1) & 0xFFFFFFFF
        futex_wake(self._seg.data_addr)
        hdr.announce_futex = (hdr.announce_futex + 1) & 0xFFFFFFFF
        futex_wake(self._seg.announce_addr)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _OpenSlot:
    """``with writer.slot() as view``: the slot is claimed on entry, committed on exit."""

    __slots__ = ("_frame_id", "_seq", "_timeout", "_timestamp_ns", "_writer")

    def __init__(
        self,
        writer: RingWriter,
        frame_id: int | None,
        timestamp_ns: int | None,
        timeout: float | None,
    ) -> None:
        self._writer = writer
        self._frame_id = frame_id
        self._timestamp_ns = timestamp_ns
        self._timeout = timeout
        self._seq = -1

    def __enter__(self) -> np.ndarray[Any, Any]:
        writer = self._writer
        seq = self._seq = writer._begin(self._timeout)
        writer._open = self
        return writer._seg.views[seq % writer._seg.slot_count]

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        writer = self._writer
        writer._open = None
        if et is None:
            writer._commit(self._seq, self._frame_id, self._timestamp_ns)
        else:
            writer._abandon(self._seq)
