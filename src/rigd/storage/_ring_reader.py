"""A ring's readers: each with its own cursor and policy, frames as zero-copy views.

Policies (``ReaderPolicy``):

- ``LOSSLESS``: the reader sees every frame, in order. Its cursor holds the
  writer back: the writer waits rather than overwrite a frame this reader
  has not released (back-pressure).
- ``LATEST``: the reader always gets the newest frame and never holds the
  writer back; it counts the frames it skipped. If the writer laps it while
  it holds a frame, ``release`` says so and the read counts as dropped.

How a reader waits when no frame is there is ``_ring_wait``'s; the frame it
hands out (``Frame``) is ``_ring_frame``'s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any, Self

import numpy as np

from rigd._exceptions import EndOfStream, RingBrokenError, RingClosedError, WouldBlock
from rigd._proc import pid_alive
from rigd.storage._futex import futex_wake
from rigd.storage._ring_frame import Frame
from rigd.storage._ring_layout import SAMPLES, ReaderPolicy, ReaderState
from rigd.storage._ring_notes import DropNote, read_notes
from rigd.storage._ring_segment import RingSegment
from rigd.storage._ring_wait import (
    CHECK_S,
    IDLE_CHECK_S,
    Announcer,
    LowLatencyWait,
    sleep_flagged,
)


class RingReader:
    """One reader of a ring, with its own cursor and policy."""

    def __init__(
        self, segment: RingSegment, index: int, policy: ReaderPolicy, low_latency: bool = False
    ) -> None:
        self._seg = segment
        self._hdr = segment.hdr
        self._rec = segment.readers[index]
        self.index = index
        self.policy = policy
        # Asked at every get and release (an enum member's lookup costs more).
        self._lossless = policy is ReaderPolicy.LOSSLESS
        self.low_latency = low_latency
        self._held: Frame | None = None
        self._closed = False
        self._wait = LowLatencyWait(segment, index) if low_latency else None
        self._announces: tuple[Announcer, ...] = ()
        self._notes_seen = 0
        #: Drop notes this reader came too late to read (see ``drop_notes``).
        self.notes_lost = 0
        #: ``get_ahead``: the next frame it hands out (frames from the cursor
        #: up to it are held); ``None`` while unused.
        self._ahead: int | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        """The ring's frame shape."""
        return self._seg.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The ring's frame dtype."""
        dtype: np.dtype[Any] = self._seg.dtype
        return dtype

    @property
    def frames_dropped(self) -> int:
        """Frames this reader skipped (latest) or lost to torn reads, so far."""
        return int(self._rec.frames_dropped)

    def drop_notes(self) -> list[DropNote]:
        """The writer's drop notes this reader has not had yet, oldest first.

        Each says which frame ids the writer skipped and why
        (``RingWriter.note_dropped``); once a frame with id ``F`` is held,
        every note about ids below ``F`` is among them. Notes overwritten
        before they were read are counted in ``notes_lost``.
        """
        if self._hdr.notes_written == self._notes_seen:
            return []  # none since the last call (most calls: a recorder asks at every frame)
        notes, self._notes_seen, lost = read_notes(self._hdr, self._notes_seen)
        self.notes_lost += lost
        return notes

    def get(self, timeout: float | None = None) -> Frame:
        """Return the next frame (lossless) or the newest one (latest).

        The frame's ``array`` is a read-only view of the slot: no copy.
        Release it before the next ``get``.

        Raises:
            TimeoutError: no frame within ``timeout`` seconds.
            EndOfStream: the writer closed the ring and every frame was read.
            RingBrokenError: the writer died, and every frame it committed was read.
            RuntimeError: the previous frame was not released.
        """
        if self._closed:
            raise RingClosedError(f"this reader of ring {self._seg.name!r} was closed")
        if self._held is not None:
            raise RuntimeError("release the frame you hold before getting the next one")
        seg = self._seg
        hdr = self._hdr
        rec = self._rec
        if rec.state != ReaderState.ACTIVE:
            raise RingBrokenError(
                f"this reader of ring {seg.name!r} was dropped as dead; attach a new one"
            )
        lossless = self._lossless
        deadline = None
        slept = False
        while True:
            expected_announce = hdr.announce_futex
            expected = hdr.data_futex
            # The header's integer fields read as ints (no int() at every frame).
            head = hdr.head
            cursor = rec.cursor
            want = cursor if self._ahead is None else max(cursor, self._ahead)
            if head > want:
                seq = want if lossless else head - 1
                if seg.meta[seq % seg.slot_count].seq == seq + 1:
                    return self._take(seq, cursor, lossless, slept)
                continue  # overwritten under us (latest reader): look again
            if hdr.closed:
                raise EndOfStream(f"ring {seg.name!r} was closed by its writer")
            check = CHECK_S if hdr.writer_pid else IDLE_CHECK_S
            if timeout is None:
                left = check
            else:
                if deadline is None:
                    deadline = time.monotonic() + timeout
                left = min(check, deadline - time.monotonic())
            if left <= 0:
                raise TimeoutError(f"no frame in ring {seg.name!r} within {timeout} s")
            slept = True
            if self._wait is not None and hdr.writer_pid:
                timed_out = self._wait.wait(
                    expected, expected_announce, head, left, self._announces
                )
            else:
                timed_out = not sleep_flagged(
                    hdr.waiting, self.index, seg.data_addr, expected, left
                )
            if timed_out:
                self._check_writer(want)

    def ready(self) -> bool:
        """Whether ``get`` would return now, without waiting: a frame is there
        to read, or ``get`` would raise at once (the stream ended, the reader
        was closed or dropped, a frame is still held).

        For a scheduler that steps several actors on one thread (an inline
        replay, ``rigd.pipeline``): it steps a reader's actor when its input is
        ready, so the step does not sleep waiting for a writer on that thread.
        """
        if self._closed or self._held is not None or self._rec.state != ReaderState.ACTIVE:
            return True
        hdr = self._hdr
        cursor: int = self._rec.cursor
        head: int = hdr.head
        want = cursor if self._ahead is None else max(cursor, self._ahead)
        return head > want or bool(hdr.closed)

    def _take(self, seq: int, cursor: int, lossless: bool, slept: bool) -> Frame:
        """Hold committed frame ``seq``: pass announcements on, move a latest
        reader's cursor, sample the wake-up latency if the reader slept."""
        seg = self._seg
        rec = self._rec
        index = seq % seg.slot_count
        meta = seg.meta[index]
        # First, so that low-latency readers downstream wake now.
        for writer in self._announces:
            writer.announce()
        frame = Frame(self, seg.read_views[index], seq, index, meta.frame_id, meta.timestamp_ns)
        if not lossless:
            rec.frames_dropped += seq - cursor
            rec.cursor = seq + 1
        if slept or self._wait is not None:
            commit_ns = int(meta.commit_ns)
            if slept:
                latency = time.monotonic_ns() - commit_ns
                rec.samples[rec.wakes % SAMPLES] = min(max(latency, 0), 0xFFFFFFFF)
                rec.wakes += 1
            if self._wait is not None:
                self._wait.learn(commit_ns)
        self._held = frame
        return frame

    # -- the ring's recent past (latest readers) --------------------------------------

    @property
    def slot_count(self) -> int:
        """The ring's slots: how many of the newest frames it holds."""
        return self._seg.slot_count

    @property
    def committed(self) -> int:
        """How many frames the writer has committed so far: sequence numbers
        ``0 .. committed - 1`` exist, the newest ``slot_count`` of them still
        in the ring (older ones were overwritten)."""
        return int(self._hdr.head)

    def wait_committed(self, count: int, timeout: float) -> int:
        """Wait until the writer has committed at least ``count`` frames;
        return how many it has (``committed``). Takes no frame.

        Raises:
            TimeoutError: fewer within ``timeout`` seconds.
            EndOfStream: the writer closed the ring with fewer.
            RingBrokenError: the writer died with fewer.
        """
        hdr = self._hdr
        deadline = time.monotonic() + timeout
        while True:
            expected = hdr.data_futex
            head = int(hdr.head)
            if head >= count:
                return head
            if hdr.closed:
                raise EndOfStream(f"ring {self._seg.name!r} was closed by its writer")
            pid = int(hdr.writer_pid)
            if pid and not pid_alive(pid):
                raise RingBrokenError(
                    f"the writer of ring {self._seg.name!r} (pid {pid}) died after {head} frames"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"ring {self._seg.name!r} has {head} frames, not {count}, after {timeout} s"
                )
            sleep_flagged(
                hdr.waiting, self.index, self._seg.data_addr, expected, min(left, CHECK_S)
            )

    def get_at(self, seq: int) -> Frame:
        """The frame with sequence number ``seq`` (the ``seq``-th the writer
        committed, from 0), if it is still in the ring: the ring's recent past,
        as a triggered recorder reads its pre-trigger frames. Latest readers
        only (a lossless reader's frames are the ones its cursor reaches).
        Release it as any frame; ``torn`` is then set if the writer overwrote
        it while it was held. Does not move the reader's cursor or count drops.

        Raises:
            ValueError: a lossless reader, or a negative ``seq``.
            LookupError: ``seq`` is not committed yet, or was overwritten
                (the message says which).
            RuntimeError: the previous frame was not released.
        """
        if self.policy is not ReaderPolicy.LATEST:
            raise ValueError("get_at reads the ring's past: it needs a reader with policy latest")
        if seq < 0:
            raise ValueError(f"sequence numbers start at 0, got {seq}")
        if self._closed:
            raise RingClosedError(f"this reader of ring {self._seg.name!r} was closed")
        if self._held is not None:
            raise RuntimeError("release the frame you hold before getting the next one")
        seg = self._seg
        head = int(self._hdr.head)
        if seq >= head:
            raise LookupError(f"frame {seq} of ring {seg.name!r} is not committed yet ({head} are)")
        index = seq % seg.slot_count
        meta = seg.meta[index]
        if meta.seq != seq + 1:
            raise LookupError(
                f"frame {seq} of ring {seg.name!r} was overwritten (the ring holds the last "
                f"{seg.slot_count}; {head} were committed)"
            )
        frame = Frame(
            self, seg.read_views[index], seq, index, int(meta.frame_id), int(meta.timestamp_ns)
        )
        if meta.seq != seq + 1:  # overwritten while the stamps were read
            raise LookupError(f"frame {seq} of ring {seg.name!r} was overwritten")
        self._held = frame
        return frame

    def announce_on(self, *writers: Announcer) -> None:
        """Announce a frame on ``writers``' rings whenever this reader takes one.

        For a processor whose output follows each input: its low-latency
        readers downstream wake while it works on the frame (see
        ``RingWriter.announce``). Replaces any writers given before.
        """
        self._announces = writers

    def _check_writer(self, want: int) -> None:
        """Raise ``RingBrokenError`` if the writer died and every frame it committed was read."""
        pid = int(self._hdr.writer_pid)
        if pid and not pid_alive(pid) and int(self._hdr.head) <= want:
            raise RingBrokenError(
                f"the writer of ring {self._seg.name!r} (pid {pid}) died; every frame it "
                "committed was read"
            )

    def get_nowait(self) -> Frame:
        """Like ``get``, but raise ``WouldBlock`` instead of waiting."""
        try:
            return self.get(timeout=0)
        except TimeoutError:
            raise WouldBlock(f"no frame in ring {self._seg.name!r} yet") from None

    def release(self, frame: Frame) -> bool:
        """Give the frame's slot back; return ``False`` if it was torn.

        A latest reader's frame is torn when the writer lapped the reader
        and overwrote the slot while it was held: what was read from it may
        mix two frames, so the read counts as dropped.
        """
        if frame is not self._held:
            raise ValueError(f"{frame!r} is not the frame this reader holds")
        self._held = None
        rec = self._rec
        if not self._lossless:
            if self._seg.meta[frame.slot].seq != frame.seq + 1:
                frame.torn = True
                rec.frames_torn += 1
                rec.frames_dropped += 1
                return False
            rec.frames_read += 1
            return True
        rec.cursor = frame.seq + 1
        rec.frames_read += 1
        hdr = self._hdr
        if hdr.writer_waiting:
            hdr.space_futex = (hdr.space_futex + 1) & 0xFFFFFFFF
            futex_wake(self._seg.space_addr)
        return True

    def get_ahead(self, timeout: float | None = None) -> Frame:
        """Lossless readers: the frame after the last one got, while the frames
        before it stay held (their slots are not reused) until ``release_through``.

        For a reader that hands slots to another party and learns later that
        they are done with (a bridge's sender: a frame is held until the far
        end acknowledges it). Several frames are held at once, at most the
        ring's ``slot_count`` (then the writer waits, as for any lossless
        reader). Do not mix with ``get``/``release``.

        Raises: as ``get``; ``ValueError`` for a latest reader.
        """
        if self.policy is not ReaderPolicy.LOSSLESS:
            raise ValueError("get_ahead holds slots: it needs a reader with policy lossless")
        if self._ahead is None:
            self._ahead = int(self._rec.cursor)
        frame = self.get(timeout)
        self._held = None
        self._ahead = frame.seq + 1
        return frame

    def release_through(self, frame: Frame) -> None:
        """Give back the slots of ``frame`` and of every frame got before it
        (``get_ahead``): the reader's cursor moves past it; the writer, if it
        waited for them, goes on."""
        rec = self._rec
        if frame.seq < int(rec.cursor):
            return  # released already
        if self._ahead is None or frame.seq >= self._ahead:
            raise ValueError(f"{frame!r} was not got with get_ahead from this reader")
        released = frame.seq + 1 - int(rec.cursor)
        rec.cursor = frame.seq + 1
        rec.frames_read += released
        hdr = self._hdr
        if hdr.writer_waiting:
            hdr.space_futex = (hdr.space_futex + 1) & 0xFFFFFFFF
            futex_wake(self._seg.space_addr)

    def read(self, timeout: float | None = None) -> Frame:
        """``with reader.read() as frame:`` gets a frame and releases it after."""
        return self.get(timeout)

    def __iter__(self) -> Iterator[Frame]:
        """Yield frames until end of stream, releasing each before the next."""
        while True:
            try:
                frame = self.get()
            except EndOfStream:
                return
            try:
                yield frame
            finally:
                if self._held is frame:
                    self.release(frame)

    def close(self) -> None:
        """Detach: free the reader slot (and the writer, if it waited on it)."""
        if self._closed:
            return
        self._closed = True
        self._held = None
        rec = self._rec
        if rec.state == ReaderState.ACTIVE and rec.pid == os.getpid():
            rec.state = ReaderState.FREE
            hdr = self._hdr
            hdr.space_futex = (hdr.space_futex + 1) & 0xFFFFFFFF
            futex_wake(self._seg.space_addr)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
