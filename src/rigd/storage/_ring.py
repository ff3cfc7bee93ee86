"""FrameRing: frames in flight, in one shared-memory segment, zero-copy.

One writer, any number of readers, each with its own cursor and policy.
The segment (a file in /dev/shm) holds, in order::

    header page   magic, layout version, shape, dtype, counters, futex words
    readers       one record per reader slot (cursor, policy, pid, counters)
    slot meta     per slot: sequence, frame id, timestamp, bytes, commit time
    slots         page-aligned frames (registrable with cudaHostRegister)

Frame ``seq`` (0, 1, 2, ...) lives in slot ``seq % slot_count``. A slot's
meta ``seq`` word is ``seq + 1`` once committed, 0 when empty and
``WRITING`` while the writer fills it: a seqlock, so a reader can tell
whether the frame it holds was overwritten. The writer fills the slot, then
stores the meta (``seq`` last), then advances ``head``. On x86-64 aligned
8-byte stores are atomic and stores are seen in program order (TSO), which
is all this protocol needs.

Policies:

- ``LOSSLESS``: the reader sees every frame, in order. Its cursor holds the
  writer back: the writer waits rather than overwrite a frame this reader
  has not released (back-pressure).
- ``LATEST``: the reader always gets the newest frame and never holds the
  writer back; it counts the frames it skipped. If the writer laps it while
  it holds a frame, ``release`` says so and the read counts as dropped.

Waiting sleeps in the kernel on futex words (``data`` for readers, ``space``
for the writer), in slices of ``_CHECK_S`` so a dead peer is noticed: a
lossless reader whose process is gone is dropped and stops holding the
writer back; a reader whose writer is gone drains, then gets
``RingBrokenError``.

Low-latency readers sleep on a third word, ``announce``: the writer bumps
it when it opens a slot (or when told a frame is coming, ``announce``), and
the reader then spins for the commit. Its wake-up, tens of microseconds on
a VM, overlaps the filling of the slot instead of following the commit.

Segments are created and unlinked by their owner (the supervisor), never by
Python's resource tracker (this module does not use
``multiprocessing.shared_memory``). Names carry the owner's pid, so
``remove_stale_rings`` can find what a crashed owner left.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import mmap
import os
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, Self

import numpy as np

from rigd._exceptions import (
    EndOfStream,
    RingBrokenError,
    RingClosedError,
    RingLayoutError,
    WouldBlock,
)
from rigd._proc import pid_alive
from rigd.storage._dtypes import dtype_text, parse_dtype
from rigd.storage._futex import futex_wait, futex_wake

__all__ = [
    "Frame",
    "FrameRing",
    "ReaderPolicy",
    "ReaderStatistics",
    "RingReader",
    "RingStatistics",
    "RingWriter",
    "remove_stale_rings",
]

SHM_DIR = "/dev/shm"
MAGIC = b"RIGDRING"
LAYOUT_VERSION = 2
MAX_DIMS = 8
MAX_READERS = 64
_PAGE = mmap.PAGESIZE
_WRITING = (1 << 64) - 1
# How often a sleeping side looks for a dead peer. Each check reads /proc
# (about 10 us); 100 ms bounds how long a dead peer can go unnoticed. A
# reader with no writer attached has nobody to check and sleeps in 1 s
# slices: an idle ring then costs well under 0.1% of a core.
_CHECK_S = 0.1
_IDLE_CHECK_S = 1.0
_SAMPLES = 64
# A low-latency reader of a regular stream sleeps until this long before the
# next frame is due, then spins (at most _SPIN_MAX_NS) instead of paying the
# kernel's wake-up of a sleeping process (about 50 us on the development VM).
_SPIN_LEAD_NS = 60_000
_SPIN_MAX_NS = 250_000
_PR_SET_TIMERSLACK = 29
# The rest of the header page, from here: a u32 length and JSON text, the
# ring's ``kind`` and a structured dtype's fields (``dtype_text``), which the
# header's 32-byte dtype cannot hold. All zero in a plain frames ring.
_EXT_OFFSET = 2048
#: What a ring carries: frames (arrays), records (structured arrays) or
#: messages (any object, serialized into byte slots; ``_messages``).
RING_KINDS = ("frames", "records", "messages")


class ReaderPolicy(Enum):
    """How a reader shares the ring with the writer."""

    LOSSLESS = 0
    LATEST = 1


class _State:
    FREE = 0
    ACTIVE = 1
    LOST = 2


class _Header(ctypes.Structure):
    _fields_ = [
        ("magic", ctypes.c_char * 8),
        ("version", ctypes.c_uint32),
        ("slot_count", ctypes.c_uint32),
        ("max_readers", ctypes.c_uint32),
        ("ndim", ctypes.c_uint32),
        ("shape", ctypes.c_uint64 * MAX_DIMS),
        ("dtype", ctypes.c_char * 32),
        ("frame_nbytes", ctypes.c_uint64),
        ("slot_stride", ctypes.c_uint64),
        ("readers_offset", ctypes.c_uint64),
        ("meta_offset", ctypes.c_uint64),
        ("slots_offset", ctypes.c_uint64),
        ("owner_pid", ctypes.c_int64),
        ("writer_pid", ctypes.c_int64),
        ("closed", ctypes.c_uint64),
        ("head", ctypes.c_uint64),
        ("writer_wait_ns", ctypes.c_uint64),
        ("writer_waits", ctypes.c_uint64),
        ("readers_lost", ctypes.c_uint64),
        ("writer_waiting", ctypes.c_uint64),
        # One byte per reader, set while it sleeps: the writer tests 8 readers
        # with one 8-byte load before deciding whether to pay for a wake.
        ("waiting", ctypes.c_uint8 * MAX_READERS),
        # Futex words, each on its own cache line.
        ("data_futex", ctypes.c_uint32),
        ("_pad_data", ctypes.c_uint32 * 15),
        ("space_futex", ctypes.c_uint32),
        ("_pad_space", ctypes.c_uint32 * 15),
        # Announcements: ``announced`` is ``seq + 1`` once the writer has said
        # frame ``seq`` is on its way; low-latency readers sleep on the
        # announce futex (flagged in ``announce_waiting``) and spin from an
        # announcement to the commit, so their wake-up overlaps the writer's
        # work on the frame.
        ("announced", ctypes.c_uint64),
        ("announce_waiting", ctypes.c_uint8 * MAX_READERS),
        ("announce_futex", ctypes.c_uint32),
        ("_pad_announce", ctypes.c_uint32 * 15),
    ]


class _Reader(ctypes.Structure):
    _fields_ = [
        ("state", ctypes.c_uint32),
        ("policy", ctypes.c_uint32),
        ("pid", ctypes.c_int64),
        ("cursor", ctypes.c_uint64),
        ("waiting", ctypes.c_uint64),
        ("frames_read", ctypes.c_uint64),
        ("frames_dropped", ctypes.c_uint64),
        ("frames_torn", ctypes.c_uint64),
        ("wakes", ctypes.c_uint64),
        ("samples", ctypes.c_uint32 * _SAMPLES),
    ]


class _SlotMeta(ctypes.Structure):
    _fields_ = [
        ("seq", ctypes.c_uint64),
        ("frame_id", ctypes.c_uint64),
        ("timestamp_ns", ctypes.c_int64),
        ("nbytes", ctypes.c_uint64),
        ("commit_ns", ctypes.c_int64),
        ("_pad", ctypes.c_uint64 * 3),
    ]


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


@dataclass(frozen=True, slots=True)
class ReaderStatistics:
    """One reader's counters, as read from the ring."""

    index: int
    policy: ReaderPolicy
    pid: int
    alive: bool
    frames_read: int
    frames_dropped: int
    frames_torn: int
    lag: int
    wake_latency_p50_us: float | None
    wake_latency_p99_us: float | None


@dataclass(frozen=True, slots=True)
class RingStatistics:
    """A ring's counters at one moment (see ``FrameRing.statistics``)."""

    name: str
    slot_count: int
    frames_written: int
    fill: float
    writer_wait_s: float
    writer_waits: int
    readers_lost: int
    closed: bool
    readers: tuple[ReaderStatistics, ...]


class Frame:
    """One frame a reader holds: a read-only view of its slot, and its stamps.

    Release it (``reader.release(frame)``, or use ``reader.read()``) when done:
    a lossless reader's slot is only reused after that.
    """

    __slots__ = ("_reader", "array", "frame_id", "seq", "slot", "timestamp_ns", "torn")

    def __init__(
        self,
        reader: RingReader,
        array: np.ndarray[Any, Any],
        seq: int,
        slot: int,
        frame_id: int,
        timestamp_ns: int,
    ) -> None:
        self._reader = reader
        self.array = array
        self.seq = seq
        self.slot = slot
        self.frame_id = frame_id
        self.timestamp_ns = timestamp_ns
        #: Set by release: the writer overwrote the slot while it was held.
        self.torn = False

    # ``with reader.read() as frame`` (or ``reader.get()``): released on exit.
    def __enter__(self) -> Frame:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader._held is self:
            self._reader.release(self)

    def __repr__(self) -> str:
        return f"Frame(seq={self.seq}, frame_id={self.frame_id})"


class FrameRing:
    """A shared-memory ring of frames of one shape and dtype.

    Create it in the owning process with ``FrameRing.create`` (which unlinks
    it on ``unlink()`` or at the end of a ``with`` block), attach to it by
    name elsewhere with ``FrameRing.attach``.
    """

    def __init__(self, name: str, fd: int, mapping: mmap.mmap, owner: bool) -> None:
        self.name = name
        self._fd = fd
        self._map = mapping
        self._owner = owner
        self._closed = False
        # Checked on the raw bytes, before any ctypes view holds the mapping.
        if mapping[:8] != MAGIC:
            raise RingLayoutError(f"shared-memory segment {name!r} is not a rigd frame ring")
        (version,) = struct.unpack_from("<I", mapping, _Header.version.offset)
        if version != LAYOUT_VERSION:
            raise RingLayoutError(
                f"ring {name!r} has layout version {version}, this rigd reads version "
                f"{LAYOUT_VERSION}; recreate it with this version of rigd"
            )
        hdr = _Header.from_buffer(mapping, 0)
        self._hdr = hdr
        self.slot_count = int(hdr.slot_count)
        self.max_readers = int(hdr.max_readers)
        self.shape = tuple(int(hdr.shape[i]) for i in range(hdr.ndim))
        ext = _read_ext(mapping)
        #: ``frames``, ``records`` or ``messages`` (see ``RING_KINDS``).
        self.kind = str(ext.get("kind", "frames"))
        self.dtype = parse_dtype(ext.get("dtype") or hdr.dtype.decode())
        self.frame_nbytes = int(hdr.frame_nbytes)
        self._readers = [
            _Reader.from_buffer(mapping, hdr.readers_offset + i * ctypes.sizeof(_Reader))
            for i in range(self.max_readers)
        ]
        self._meta = [
            _SlotMeta.from_buffer(mapping, hdr.meta_offset + i * ctypes.sizeof(_SlotMeta))
            for i in range(self.slot_count)
        ]
        self._views = [
            np.ndarray(
                self.shape,
                self.dtype,
                buffer=mapping,
                offset=hdr.slots_offset + i * hdr.slot_stride,
            )
            for i in range(self.slot_count)
        ]
        words = -(-self.max_readers // 8)
        self._waiting_words = (ctypes.c_uint64 * words).from_buffer(mapping, _Header.waiting.offset)
        self._announce_words = (ctypes.c_uint64 * words).from_buffer(
            mapping, _Header.announce_waiting.offset
        )
        self._read_views = [v.view() for v in self._views]
        for view in self._read_views:
            view.flags.writeable = False
        self._data_addr = ctypes.addressof(hdr) + _Header.data_futex.offset
        self._space_addr = ctypes.addressof(hdr) + _Header.space_futex.offset
        self._announce_addr = ctypes.addressof(hdr) + _Header.announce_futex.offset

    def slot_memory(self) -> tuple[int, int]:
        """The address and size of the slots (page-aligned): what a GPU actor
        registers as pinned memory, so copies to the device are DMA."""
        self._check_open()
        hdr = self._hdr
        start = ctypes.c_char.from_buffer(self._map, hdr.slots_offset)
        return ctypes.addressof(start), int(hdr.slot_stride) * self.slot_count

    # -- creation and attachment ---------------------------------------------------

    @staticmethod
    def segment_name(name: str, owner_pid: int | None = None) -> str:
        """The /dev/shm file name of ring ``name`` owned by ``owner_pid``."""
        return f"rigd-{owner_pid or os.getpid()}-ring-{name}"

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
        if not name or not all(c.isalnum() or c in "-_." for c in name):
            raise ValueError(f"ring name must be letters, digits, '-', '_' or '.', got {name!r}")
        shape = tuple(int(d) for d in shape)
        if not 1 <= len(shape) <= MAX_DIMS or any(d <= 0 for d in shape):
            raise ValueError(f"shape must have 1 to {MAX_DIMS} positive sizes, got {shape!r}")
        dt = parse_dtype(dtype)
        if dt.hasobject or len(dt.str) > 31:
            raise ValueError(
                f"dtype must be a plain numeric dtype (or a structured dtype of numeric "
                f"fields), got {dt!r}"
            )
        if kind not in RING_KINDS:
            raise ValueError(f"kind must be one of {RING_KINDS}, got {kind!r}")
        ext = json.dumps({"kind": kind, "dtype": dtype_text(dt)} if dt.names else {"kind": kind})
        if len(ext) > _PAGE - _EXT_OFFSET - 4:
            raise ValueError(f"the structured dtype {dt} has too many fields for a ring's header")
        if isinstance(slot_count, bool) or not isinstance(slot_count, int) or slot_count < 2:
            raise ValueError(f"slot_count must be an int >= 2, got {slot_count!r}")
        if (
            isinstance(max_readers, bool)
            or not isinstance(max_readers, int)
            or not 1 <= max_readers <= MAX_READERS
        ):
            raise ValueError(
                f"max_readers must be an int from 1 to {MAX_READERS}, got {max_readers!r}"
            )
        frame_nbytes = int(np.prod(shape)) * dt.itemsize
        stride = _round_up(frame_nbytes, _PAGE)
        readers_offset = _PAGE
        meta_offset = readers_offset + max_readers * ctypes.sizeof(_Reader)
        slots_offset = _round_up(meta_offset + slot_count * ctypes.sizeof(_SlotMeta), _PAGE)
        size = cls.bytes_needed(shape, dt, slot_count, max_readers)
        free = shm_free_bytes()
        if size > free:
            raise OSError(
                f"ring {name!r} needs {size / 2**20:.1f} MiB but {SHM_DIR} has "
                f"{free / 2**20:.1f} MiB free; use fewer or smaller slots, or enlarge "
                f"{SHM_DIR} (docker: --shm-size)"
            )
        segment = cls.segment_name(name)
        path = os.path.join(SHM_DIR, segment)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            # Reserve every page now: a full /dev/shm fails here with ENOSPC,
            # not later with SIGBUS in the middle of a frame.
            os.posix_fallocate(fd, 0, size)
            mapping = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        hdr = _Header.from_buffer(mapping, 0)
        hdr.version = LAYOUT_VERSION
        hdr.slot_count = slot_count
        hdr.max_readers = max_readers
        hdr.ndim = len(shape)
        for i, d in enumerate(shape):
            hdr.shape[i] = d
        hdr.dtype = dt.str.encode()
        hdr.frame_nbytes = frame_nbytes
        hdr.slot_stride = stride
        hdr.readers_offset = readers_offset
        hdr.meta_offset = meta_offset
        hdr.slots_offset = slots_offset
        hdr.owner_pid = os.getpid()
        if kind != "frames" or dt.names:
            data = ext.encode()
            struct.pack_into("<I", mapping, _EXT_OFFSET, len(data))
            mapping[_EXT_OFFSET + 4 : _EXT_OFFSET + 4 + len(data)] = data
        hdr.magic = MAGIC  # last: a half-made segment is not a ring
        del hdr
        return cls(segment, fd, mapping, owner=True)

    @staticmethod
    def bytes_needed(
        shape: tuple[int, ...], dtype: Any, slot_count: int, max_readers: int = MAX_READERS
    ) -> int:
        """The bytes of /dev/shm a ring of these frames and slots takes."""
        stride = _round_up(int(np.prod(shape)) * parse_dtype(dtype).itemsize, _PAGE)
        meta_offset = _PAGE + max_readers * ctypes.sizeof(_Reader)
        slots_offset = _round_up(meta_offset + slot_count * ctypes.sizeof(_SlotMeta), _PAGE)
        return slots_offset + slot_count * stride

    @classmethod
    def attach(cls, segment: str) -> FrameRing:
        """Attach to an existing ring by its segment name (``ring.name``).

        Raises:
            FileNotFoundError: no such ring.
            RingLayoutError: the segment is not a ring of this layout version.
        """
        path = os.path.join(SHM_DIR, segment)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise FileNotFoundError(
                f"no ring named {segment!r} in {SHM_DIR}; is its owner running?"
            ) from None
        try:
            size = os.fstat(fd).st_size
            if size < _PAGE:
                raise RingLayoutError(f"shared-memory segment {segment!r} is not a rigd frame ring")
            mapping = mmap.mmap(fd, size)
        except BaseException:
            os.close(fd)
            raise
        try:
            return cls(segment, fd, mapping, owner=False)
        except BaseException:
            mapping.close()
            os.close(fd)
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._owner:
            self.unlink()
        self.close()

    def close(self) -> None:
        """Detach this process's mapping (readers and writers first)."""
        if self._closed:
            return
        self._closed = True
        self._views.clear()
        self._read_views.clear()
        del self._waiting_words
        del self._announce_words
        self._readers.clear()
        self._meta.clear()
        del self._hdr
        try:
            self._map.close()
        except BufferError:
            pass  # a Frame still holds a view; the mapping goes with it
        os.close(self._fd)

    def unlink(self) -> None:
        """Remove the segment's name (its owner does this); mappings stay valid."""
        try:
            os.unlink(os.path.join(SHM_DIR, self.name))
        except FileNotFoundError:
            pass

    def _check_open(self) -> None:
        if self._closed:
            raise RingClosedError(f"ring {self.name!r} was closed in this process")

    @contextlib.contextmanager
    def _registration(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    # -- endpoints ---------------------------------------------------------------------

    def writer(self) -> RingWriter:
        """Become the ring's one writer.

        Raises:
            RuntimeError: another live process is the writer.
        """
        self._check_open()
        with self._registration():
            pid = int(self._hdr.writer_pid)
            if pid and pid != os.getpid() and pid_alive(pid):
                raise RuntimeError(f"ring {self.name!r} already has a writer (pid {pid})")
            self._hdr.writer_pid = os.getpid()
        return RingWriter(self)

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
        self._check_open()
        if isinstance(policy, str):
            try:
                policy = ReaderPolicy[policy.upper()]
            except KeyError:
                raise ValueError(f"policy must be 'lossless' or 'latest', got {policy!r}") from None
        with self._registration():
            for index, rec in enumerate(self._readers):
                if rec.state == _State.ACTIVE and rec.pid and not pid_alive(rec.pid):
                    self._drop_reader(rec)
                if rec.state != _State.ACTIVE:
                    rec.frames_read = rec.frames_dropped = rec.frames_torn = rec.wakes = 0
                    rec.waiting = 0
                    rec.policy = policy.value
                    rec.pid = os.getpid()
                    rec.cursor = self._hdr.head
                    rec.state = _State.ACTIVE
                    if low_latency:
                        _tighten_timer_slack()
                    return RingReader(self, index, policy, low_latency)
        raise RuntimeError(
            f"ring {self.name!r} has all {self.max_readers} reader slots taken; create it "
            "with a larger max_readers"
        )

    def _drop_reader(self, rec: _Reader) -> None:
        rec.state = _State.LOST
        self._hdr.readers_lost += 1
        self._hdr.space_futex = (self._hdr.space_futex + 1) & 0xFFFFFFFF
        futex_wake(self._space_addr)

    # -- statistics ------------------------------------------------------------------

    def statistics(self) -> RingStatistics:
        """Read the ring's counters (from any process attached to it)."""
        self._check_open()
        hdr = self._hdr
        head = int(hdr.head)
        readers = []
        lossless_cursors = []
        for index, rec in enumerate(self._readers):
            if rec.state == _State.FREE:
                continue
            policy = ReaderPolicy(rec.policy)
            alive = rec.state == _State.ACTIVE
            if alive and policy is ReaderPolicy.LOSSLESS:
                lossless_cursors.append(int(rec.cursor))
            n = min(int(rec.wakes), _SAMPLES)
            samples = sorted(rec.samples[i] for i in range(n))
            readers.append(
                ReaderStatistics(
                    index=index,
                    policy=policy,
                    pid=int(rec.pid),
                    alive=alive,
                    frames_read=int(rec.frames_read),
                    frames_dropped=int(rec.frames_dropped),
                    frames_torn=int(rec.frames_torn),
                    lag=head - int(rec.cursor),
                    wake_latency_p50_us=samples[n // 2] / 1e3 if n else None,
                    wake_latency_p99_us=samples[min(n - 1, int(n * 0.99))] / 1e3 if n else None,
                )
            )
        fill = (head - min(lossless_cursors)) / self.slot_count if lossless_cursors else 0.0
        return RingStatistics(
            name=self.name,
            slot_count=self.slot_count,
            frames_written=head,
            fill=fill,
            writer_wait_s=hdr.writer_wait_ns / 1e9,
            writer_waits=int(hdr.writer_waits),
            readers_lost=int(hdr.readers_lost),
            closed=bool(hdr.closed),
            readers=tuple(readers),
        )


class RingWriter:
    """The one writer of a ring: ``put`` copies a frame in, ``slot`` fills one in place."""

    def __init__(self, ring: FrameRing) -> None:
        self._ring = ring
        self._hdr = ring._hdr
        self._closed = False
        # Frames below this sequence number have a free slot for sure (no
        # lossless reader can be a whole ring behind them): most frames skip
        # the scan of the reader records, which matters for a frame's latency
        # more than its cost suggests (it is code and memory a 100 Hz writer
        # finds cold).
        self._space_until = 0
        self._open: _OpenSlot | None = None

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
        meta = self._ring._meta[(head - 1) % self._ring.slot_count]
        if meta.seq != head:
            return None  # being overwritten: no committed frame to read
        return int(meta.frame_id), int(meta.timestamp_ns)

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
        ring = self._ring
        if array.shape != ring.shape or (
            array.dtype is not ring.dtype and array.dtype != ring.dtype
        ):
            raise ValueError(
                f"frame of shape {array.shape} and dtype {array.dtype} does not fit ring "
                f"{ring.name!r}, which holds shape {ring.shape} and dtype {ring.dtype}"
            )
        seq = self._begin(timeout)
        try:
            np.copyto(ring._views[seq % ring.slot_count], array, casting="no")
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
                f"ring {self._ring.name!r} is full: a lossless reader is a whole ring behind"
            ) from None

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

    def _begin(self, timeout: float | None) -> int:
        """Claim the next slot (waiting for space) and announce its frame."""
        if self._closed:
            raise RingClosedError(f"the writer of ring {self._ring.name!r} was closed")
        if self._open is not None:
            raise RuntimeError("commit or abandon the open slot before opening another")
        hdr = self._hdr
        seq = int(hdr.head)
        if seq >= self._space_until:
            self._wait_for_space(seq, timeout)
        # The frame is on its way: low-latency readers wake while it is filled.
        self.announce()
        self._ring._meta[seq % self._ring.slot_count].seq = _WRITING
        return seq

    def _abandon(self, seq: int) -> None:
        self._ring._meta[seq % self._ring.slot_count].seq = 0

    def _commit(self, seq: int, frame_id: int | None, timestamp_ns: int | None) -> None:
        now = time.monotonic_ns()
        ring = self._ring
        hdr = self._hdr
        meta = ring._meta[seq % ring.slot_count]
        meta.frame_id = seq if frame_id is None else frame_id
        meta.timestamp_ns = time.time_ns() if timestamp_ns is None else timestamp_ns
        meta.nbytes = ring.frame_nbytes
        meta.commit_ns = now
        meta.seq = seq + 1
        hdr.head = seq + 1
        hdr.data_futex = (hdr.data_futex + 1) & 0xFFFFFFFF
        if any(ring._waiting_words):
            futex_wake(ring._data_addr)

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
        if self._closed or int(hdr.announced) > int(hdr.head):
            return  # the stream ended, or the frame was announced already
        hdr.announced = hdr.head + 1
        hdr.announce_futex = (hdr.announce_futex + 1) & 0xFFFFFFFF
        if any(self._ring._announce_words):
            futex_wake(self._ring._announce_addr)

    def _wait_for_space(self, seq: int, timeout: float | None) -> None:
        ring = self._ring
        hdr = self._hdr
        deadline = None if timeout is None else time.monotonic() + timeout
        waited_from = 0
        try:
            while True:
                expected = hdr.space_futex
                blocking = []
                lowest = seq
                for rec in ring._readers:
                    if rec.state == _State.ACTIVE and rec.policy == 0:
                        cursor = int(rec.cursor)
                        if seq - cursor >= ring.slot_count:
                            blocking.append(rec)
                        lowest = min(lowest, cursor)
                if not blocking:
                    # Readers only move on, and a new one starts at the head.
                    self._space_until = lowest + ring.slot_count
                    return
                if not waited_from:
                    waited_from = time.monotonic_ns()
                    hdr.writer_waits += 1
                left = _CHECK_S if deadline is None else min(_CHECK_S, deadline - time.monotonic())
                if left <= 0:
                    raise TimeoutError(
                        f"no free slot in ring {ring.name!r} within {timeout} s: a lossless "
                        "reader is a whole ring behind"
                    )
                hdr.writer_waiting = 1
                if not futex_wait(ring._space_addr, expected, left):
                    for rec in blocking:
                        if not pid_alive(int(rec.pid)):
                            ring._drop_reader(rec)
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
        hdr.closed = 1
        hdr.writer_pid = 0
        hdr.data_futex = (hdr.data_futex + 1) & 0xFFFFFFFF
        futex_wake(self._ring._data_addr)
        hdr.announce_futex = (hdr.announce_futex + 1) & 0xFFFFFFFF
        futex_wake(self._ring._announce_addr)

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
        return writer._ring._views[seq % writer._ring.slot_count]

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        writer = self._writer
        writer._open = None
        if et is None:
            writer._commit(self._seq, self._frame_id, self._timestamp_ns)
        else:
            writer._abandon(self._seq)


class RingReader:
    """One reader of a ring, with its own cursor and policy."""

    def __init__(
        self, ring: FrameRing, index: int, policy: ReaderPolicy, low_latency: bool = False
    ) -> None:
        self._ring = ring
        self._hdr = ring._hdr
        self._rec = ring._readers[index]
        self.index = index
        self.policy = policy
        self.low_latency = low_latency
        self._held: Frame | None = None
        self._closed = False
        # Low latency: the last commit time and the stream's period (smoothed).
        self._last_commit_ns = 0
        self._period_ns = 0
        # Timer slack is per thread: tightened for the thread that reads.
        self._slack_thread = 0
        # How late this thread's timed sleeps wake, smoothed.
        self._late_ns = 0
        # The frame this reader last spun for after its announcement.
        self._spun_for = -1
        self._announces: tuple[RingWriter, ...] = ()

    @property
    def shape(self) -> tuple[int, ...]:
        """The ring's frame shape."""
        return self._ring.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """The ring's frame dtype."""
        dtype: np.dtype[Any] = self._ring.dtype
        return dtype

    @property
    def frames_dropped(self) -> int:
        """Frames this reader skipped (latest) or lost to torn reads, so far."""
        return int(self._rec.frames_dropped)

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
            raise RingClosedError(f"this reader of ring {self._ring.name!r} was closed")
        if self._held is not None:
            raise RuntimeError("release the frame you hold before getting the next one")
        ring = self._ring
        hdr = self._hdr
        rec = self._rec
        if rec.state != _State.ACTIVE:
            raise RingBrokenError(
                f"this reader of ring {ring.name!r} was dropped as dead; attach a new one"
            )
        lossless = self.policy is ReaderPolicy.LOSSLESS
        deadline = None
        slept = False
        while True:
            expected_announce = hdr.announce_futex
            expected = hdr.data_futex
            head = int(hdr.head)
            cursor = int(rec.cursor)
            if head > cursor:
                seq = cursor if lossless else head - 1
                index = seq % ring.slot_count
                meta = ring._meta[index]
                if meta.seq == seq + 1:
                    # First, so that low-latency readers downstream wake now.
                    for writer in self._announces:
                        writer.announce()
                    frame = Frame(
                        self,
                        ring._read_views[index],
                        seq,
                        index,
                        int(meta.frame_id),
                        int(meta.timestamp_ns),
                    )
                    if not lossless:
                        rec.frames_dropped += seq - cursor
                        rec.cursor = seq + 1
                    commit_ns = int(meta.commit_ns)
                    if slept:
                        latency = time.monotonic_ns() - commit_ns
                        rec.samples[rec.wakes % _SAMPLES] = min(max(latency, 0), 0xFFFFFFFF)
                        rec.wakes += 1
                    if self.low_latency:
                        self._learn_period(commit_ns)
                    self._held = frame
                    return frame
                continue  # overwritten under us (latest reader): look again
            if hdr.closed:
                raise EndOfStream(f"ring {ring.name!r} was closed by its writer")
            check = _CHECK_S if hdr.writer_pid else _IDLE_CHECK_S
            if timeout is None:
                left = check
            else:
                if deadline is None:
                    deadline = time.monotonic() + timeout
                left = min(check, deadline - time.monotonic())
            if left <= 0:
                raise TimeoutError(f"no frame in ring {ring.name!r} within {timeout} s")
            if self.low_latency and hdr.writer_pid:
                if self._slack_thread != threading.get_ident():
                    _tighten_timer_slack()
                    self._slack_thread = threading.get_ident()
                if int(hdr.announced) > head:
                    if self._spun_for != head:
                        # The frame is on its way: spin for its commit, briefly.
                        self._spun_for = head
                        slept = True
                        # Pass the announcement on now, while there is time to
                        # spare: the syscall that wakes a reader downstream
                        # would cost the frame tens of microseconds later.
                        for writer in self._announces:
                            writer.announce()
                        until = time.monotonic_ns() + _SPIN_MAX_NS
                        while hdr.data_futex == expected and time.monotonic_ns() < until:
                            pass
                        continue
                    # Announced long ago and still not committed: sleep until it is.
                else:
                    if self._period_ns:
                        due = self._last_commit_ns + self._period_ns
                        now = time.monotonic_ns()
                        if now < due + _SPIN_MAX_NS:
                            slept = True
                            # Wake up early enough for this machine's timers: the lead
                            # grows with how late timed sleeps wake (~140 us on a VM).
                            lead = _SPIN_LEAD_NS + 2 * self._late_ns
                            if due - lead > now:
                                # Sleep (woken early by an announcement) ...
                                sleep_s = min((due - lead - now) / 1e9, left)
                                if not self._sleep_until_announced(expected_announce, sleep_s):
                                    late = time.monotonic_ns() - (now + int(sleep_s * 1e9))
                                    self._late_ns = (7 * self._late_ns + max(0, late)) // 8
                                continue
                            # ... then spin for the announcement, briefly.
                            until = due + _SPIN_MAX_NS
                            while (
                                hdr.announce_futex == expected_announce
                                and time.monotonic_ns() < until
                            ):
                                pass
                            continue
                    # Every commit is announced first: sleep until the next one.
                    slept = True
                    if not self._sleep_until_announced(expected_announce, left):
                        self._check_writer()
                    continue
            slept = True
            if not self._sleep(hdr.waiting, ring._data_addr, expected, left):
                self._check_writer()

    # -- the ring's recent past (latest readers) --------------------------------------

    @property
    def slot_count(self) -> int:
        """The ring's slots: how many of the newest frames it holds."""
        return self._ring.slot_count

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
                raise EndOfStream(f"ring {self._ring.name!r} was closed by its writer")
            pid = int(hdr.writer_pid)
            if pid and not pid_alive(pid):
                raise RingBrokenError(
                    f"the writer of ring {self._ring.name!r} (pid {pid}) died after {head} frames"
                )
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"ring {self._ring.name!r} has {head} frames, not {count}, after {timeout} s"
                )
            self._sleep(hdr.waiting, self._ring._data_addr, expected, min(left, _CHECK_S))

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
            raise RingClosedError(f"this reader of ring {self._ring.name!r} was closed")
        if self._held is not None:
            raise RuntimeError("release the frame you hold before getting the next one")
        ring = self._ring
        head = int(self._hdr.head)
        if seq >= head:
            raise LookupError(
                f"frame {seq} of ring {ring.name!r} is not committed yet ({head} are)"
            )
        index = seq % ring.slot_count
        meta = ring._meta[index]
        if meta.seq != seq + 1:
            raise LookupError(
                f"frame {seq} of ring {ring.name!r} was overwritten (the ring holds the last "
                f"{ring.slot_count}; {head} were committed)"
            )
        frame = Frame(
            self, ring._read_views[index], seq, index, int(meta.frame_id), int(meta.timestamp_ns)
        )
        if meta.seq != seq + 1:  # overwritten while the stamps were read
            raise LookupError(f"frame {seq} of ring {ring.name!r} was overwritten")
        self._held = frame
        return frame

    def announce_on(self, *writers: RingWriter) -> None:
        """Announce a frame on ``writers``' rings whenever this reader takes one.

        For a processor whose output follows each input: its low-latency
        readers downstream wake while it works on the frame (see
        ``RingWriter.announce``). Replaces any writers given before.
        """
        self._announces = writers

    def _sleep_until_announced(self, expected: int, timeout: float) -> bool:
        return self._sleep(self._hdr.announce_waiting, self._ring._announce_addr, expected, timeout)

    def _sleep(self, flags: Any, futex: int, expected: int, timeout: float) -> bool:
        """Sleep on ``futex`` with this reader's flag up (the writer wakes only
        flagged sleepers); return whether it was woken before ``timeout``."""
        flags[self.index] = 1
        woken = futex_wait(futex, expected, timeout)
        flags[self.index] = 0
        return woken

    def _check_writer(self) -> None:
        """Raise ``RingBrokenError`` if the writer died and every frame it committed was read."""
        pid = int(self._hdr.writer_pid)
        if pid and not pid_alive(pid) and int(self._hdr.head) <= int(self._rec.cursor):
            raise RingBrokenError(
                f"the writer of ring {self._ring.name!r} (pid {pid}) died; every frame it "
                "committed was read"
            )

    def _learn_period(self, commit_ns: int) -> None:
        if self._last_commit_ns:
            gap = commit_ns - self._last_commit_ns
            # A stream that stalls (gap > 4 periods) starts its estimate over.
            if not self._period_ns or gap > 4 * self._period_ns:
                self._period_ns = gap
            else:
                self._period_ns = (7 * self._period_ns + gap) // 8
        self._last_commit_ns = commit_ns

    def get_nowait(self) -> Frame:
        """Like ``get``, but raise ``WouldBlock`` instead of waiting."""
        try:
            return self.get(timeout=0)
        except TimeoutError:
            raise WouldBlock(f"no frame in ring {self._ring.name!r} yet") from None

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
        ring = self._ring
        if self.policy is ReaderPolicy.LATEST:
            if ring._meta[frame.slot].seq != frame.seq + 1:
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
            futex_wake(ring._space_addr)
        return True

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
        if rec.state == _State.ACTIVE and rec.pid == os.getpid():
            rec.state = _State.FREE
            hdr = self._hdr
            hdr.space_futex = (hdr.space_futex + 1) & 0xFFFFFFFF
            futex_wake(self._ring._space_addr)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_ext(mapping: mmap.mmap) -> dict[str, Any]:
    """The header page's JSON extension (kind, structured dtype), or ``{}``."""
    (length,) = struct.unpack_from("<I", mapping, _EXT_OFFSET)
    if not 0 < length <= _PAGE - _EXT_OFFSET - 4:
        return {}
    try:
        ext = json.loads(bytes(mapping[_EXT_OFFSET + 4 : _EXT_OFFSET + 4 + length]))
    except ValueError:
        return {}
    return ext if isinstance(ext, dict) else {}


def _tighten_timer_slack() -> None:
    """Let this thread's timed sleeps end on time (Linux's default slack is 50 us)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: sleeps are as precise as the system makes them


def shm_free_bytes() -> int:
    """Free bytes in /dev/shm, where rings live."""
    st = os.statvfs(SHM_DIR)
    return int(st.f_bavail * st.f_frsize)


def remove_stale_rings() -> list[str]:
    """Remove ring segments whose owner process is dead; return their names."""
    removed = []
    for name in os.listdir(SHM_DIR):
        if not name.startswith("rigd-") or "-ring-" not in name:
            continue
        pid = name[len("rigd-") :].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(SHM_DIR, name))
                removed.append(name)
    return removed
