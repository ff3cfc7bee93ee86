"""FrameRing: frames in flight, in one shared-memory segment, zero-copy.

One writer, any number of readers, each with its own cursor and policy.
This module is the ring's face: ``FrameRing`` creates or attaches a segment
and hands out its writer and readers. The parts, one concept each:

- ``_ring_layout``: what each byte of a segment means (header, reader
  records, slot meta, slots) and the seqlock protocol over them;
- ``_ring_segment``: creating, attaching, mapping, closing and sweeping
  segments (``remove_stale_rings``);
- ``_ring_writer``: the writer (back-pressure, commit, announcements);
- ``_ring_reader``: the readers and their policies, ``Frame``;
- ``_ring_wait``: how readers wait (futex sleeps, the low-latency wait);
- ``_ring_stats``: the counters any attached process can read.
"""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any, Self

from rigd._proc import pid_alive
from rigd.storage._dtypes import parse_dtype
from rigd.storage._ring_frame import Frame
from rigd.storage._ring_layout import (
    LAYOUT_VERSION,
    MAX_READERS,
    Header,
    ReaderPolicy,
    ReaderState,
    SegmentLayout,
)
from rigd.storage._ring_notes import DropNote, read_notes
from rigd.storage._ring_reader import RingReader
from rigd.storage._ring_segment import (
    RING_KINDS,
    RingSegment,
    remove_stale_rings,
    shm_free_bytes,
)
from rigd.storage._ring_stats import ReaderStatistics, RingStatistics, read_statistics
from rigd.storage._ring_wait import tighten_timer_slack
from rigd.storage._ring_writer import RingWriter

__all__ = [
    "LAYOUT_VERSION",
    "RING_KINDS",
    "Frame",
    "FrameRing",
    "ReaderPolicy",
    "ReaderStatistics",
    "RingReader",
    "RingStatistics",
    "RingWriter",
    "remove_stale_rings",
    "shm_free_bytes",
]


class FrameRing:
    """A shared-memory ring of frames of one shape and dtype.

    Create it in the owning process with ``FrameRing.create`` (which unlinks
    it on ``unlink()`` or at the end of a ``with`` block), attach to it by
    name elsewhere with ``FrameRing.attach``.
    """

    def __init__(self, segment: RingSegment) -> None:
        self._seg = segment
        self.name = segment.name
        self.slot_count = segment.slot_count
        self.max_readers = segment.max_readers
        self.shape = segment.shape
        self.dtype = segment.dtype
        self.frame_nbytes = segment.frame_nbytes
        #: ``frames``, ``records`` or ``messages`` (see ``RING_KINDS``).
        self.kind = segment.kind

    @property
    def _hdr(self) -> Header:
        """The segment's header (tests and debugging read its words)."""
        return self._seg.hdr

    def slot_memory(self) -> tuple[int, int]:
        """The address and size of the slots (page-aligned): what a GPU actor
        registers as pinned memory, so copies to the device are DMA."""
        return self._seg.slot_memory()

    # -- creation and attachment ---------------------------------------------------

    @staticmethod
    def segment_name(name: str, owner_pid: int | None = None) -> str:
        """The /dev/shm file name of ring ``name`` owned by ``owner_pid``."""
        return RingSegment.segment_name(name, owner_pid)

    @classmethod
    def create(
        cls,
        name: str,
        shape: tuple[int, ...],
        dtype: Any,
        slot_count: int = 16,
        max_readers: int = 8,
        kind: str = "frames",
    ) -> FrameRing:
        """Create a ring; this process owns it and must ``unlink`` it.

        Args:
            name: a name unique among this process's rings (letters, digits,
                ``-``, ``_``, ``.``).
            shape: every frame's shape.
            dtype: every frame's dtype.
            slot_count: frames the ring holds (at least 2).
            max_readers: readers that may attach at once.
            kind: what the ring carries, as readers see it (``RING_KINDS``);
                a structured dtype's field names are kept whatever the kind.

        Raises:
            ValueError: a bad name, shape, dtype, count or kind.
            OSError: /dev/shm has too little free space (checked before
                anything is allocated), or the name is taken.
        """
        return cls(RingSegment.create(name, shape, dtype, slot_count, max_readers, kind))

    @staticmethod
    def bytes_needed(
        shape: tuple[int, ...], dtype: Any, slot_count: int, max_readers: int = MAX_READERS
    ) -> int:
        """The bytes of /dev/shm a ring of these frames and slots takes."""
        return SegmentLayout.plan(shape, parse_dtype(dtype), slot_count, max_readers).size

    @classmethod
    def attach(cls, segment: str) -> FrameRing:
        """Attach to an existing ring by its segment name (``ring.name``).

        Raises:
            FileNotFoundError: no such ring.
            RingLayoutError: the segment is not a ring of this layout version.
        """
        return cls(RingSegment.attach(segment))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._seg.owner:
            self.unlink()
        self.close()

    def close(self) -> None:
        """Detach this process's mapping (readers and writers first)."""
        self._seg.close()

    def unlink(self) -> None:
        """Remove the segment's name (its owner does this); mappings stay valid."""
        self._seg.unlink()

    # -- endpoints ---------------------------------------------------------------------

    def writer(self) -> RingWriter:
        """Become the ring's one writer.

        Raises:
            RuntimeError: another live process is the writer.
        """
        seg = self._seg
        seg.check_open()
        with seg.registration():
            pid = int(seg.hdr.writer_pid)
            if pid and pid != os.getpid() and pid_alive(pid):
                raise RuntimeError(f"ring {self.name!r} already has a writer (pid {pid})")
            seg.hdr.writer_pid = os.getpid()
        return RingWriter(seg)

    def reader(
        self, policy: ReaderPolicy | str = ReaderPolicy.LOSSLESS, *, low_latency: bool = False
    ) -> RingReader:
        """Attach a reader; it starts at the next frame the writer commits.

        With ``low_latency``, the reader wakes when the writer announces a
        frame (see ``RingWriter.announce``) and spins for its commit (at most
        250 us); on a regular stream it also sleeps until just before the
        next frame is due and spins for it. Lower wake-up latency for some
        CPU while frames flow (about 6-10% of a core at 1 kHz; none when the
        ring is idle, where it sleeps as any reader does). It also sets the
        calling thread's timer slack to 1 ns.

        Raises:
            ValueError: an unknown policy.
            RuntimeError: all ``max_readers`` reader slots are taken.
        """
        seg = self._seg
        seg.check_open()
        if isinstance(policy, str):
            try:
                policy = ReaderPolicy[policy.upper()]
            except KeyError:
                raise ValueError(f"policy must be 'lossless' or 'latest', got {policy!r}") from None
        me = os.getpid()
        with seg.registration():
            for index, rec in enumerate(seg.readers):
                # A reader of this process is alive (no /proc read for it).
                pid = rec.pid
                if rec.state == ReaderState.ACTIVE and pid and pid != me and not pid_alive(pid):
                    seg.drop_reader(rec)
                if rec.state != ReaderState.ACTIVE:
                    rec.frames_read = rec.frames_dropped = rec.frames_torn = rec.wakes = 0
                    rec.waiting = 0
                    rec.policy = policy.value
                    rec.pid = os.getpid()
                    rec.cursor = seg.hdr.head
                    rec.state = ReaderState.ACTIVE
                    if low_latency:
                        tighten_timer_slack()
                    return RingReader(seg, index, policy, low_latency)
        raise RuntimeError(
            f"ring {self.name!r} has all {self.max_readers} reader slots taken; create it "
            "with a larger max_readers"
        )

    # -- statistics ------------------------------------------------------------------

    def statistics(self) -> RingStatistics:
        """Read the ring's counters (from any process attached to it)."""
        return read_statistics(self._seg)

    def drop_notes(self, cursor: int = 0) -> tuple[list[DropNote], int, int]:
        """The writer's drop notes since ``cursor`` (ids it skipped, and why;
        ``_ring_notes``), read by any attached process without taking a reader.

        Returns:
            ``(notes, new cursor, notes lost)``: ``lost`` counts notes
            overwritten (the ring keeps the newest 64) before they were read.
        """
        self._seg.check_open()
        return read_notes(self._hdr, cursor)
