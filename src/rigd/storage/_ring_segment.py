"""A ring's shared-memory segment: created, attached, mapped, closed, swept.

``RingSegment`` owns the file descriptor and the mapping of one segment and
the typed views into it (header, reader records, slot meta, frame views,
futex addresses) that the writer and the readers share. It knows nothing of
the protocol they run over it (``_ring_writer``, ``_ring_reader``).

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
from collections.abc import Iterator
from typing import Any

import numpy as np

from rigd._exceptions import RingClosedError, RingLayoutError
from rigd._proc import pid_alive
from rigd.storage._dtypes import dtype_text, parse_dtype
from rigd.storage._futex import futex_wake
from rigd.storage._ring_layout import (
    LAYOUT_VERSION,
    MAGIC,
    MAX_DIMS,
    MAX_READERS,
    PAGE,
    Header,
    ReaderRecord,
    ReaderState,
    SegmentLayout,
    SlotMeta,
)

SHM_DIR = "/dev/shm"
# madvise(2): prefault page tables writable (Python's mmap has no name for it).
_MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)
# The rest of the header page, from here: a u32 length and JSON text, the
# ring's ``kind`` and a structured dtype's fields (``dtype_text``), which the
# header's 32-byte dtype cannot hold. All zero in a plain frames ring.
_EXT_OFFSET = 2048
#: What a ring carries: frames (arrays), records (structured arrays) or
#: messages (any object, serialized into byte slots; ``_messages``).
RING_KINDS = ("frames", "records", "messages")


class RingSegment:
    """One mapped ring segment and its views; see the module docstring.

    Raises ``RingLayoutError`` when the mapping is not a ring of this
    ``LAYOUT_VERSION``.
    """

    def __init__(self, name: str, fd: int, mapping: mmap.mmap, owner: bool) -> None:
        self.name = name
        self.fd = fd
        self.map = mapping
        self.owner = owner
        self.closed = False
        # Checked on the raw bytes, before any ctypes view holds the mapping.
        if mapping[:8] != MAGIC:
            raise RingLayoutError(f"shared-memory segment {name!r} is not a rigd frame ring")
        (version,) = struct.unpack_from("<I", mapping, Header.version.offset)
        if version != LAYOUT_VERSION:
            raise RingLayoutError(
                f"ring {name!r} has layout version {version}, this rigd reads version "
                f"{LAYOUT_VERSION}; recreate it with this version of rigd"
            )
        hdr = Header.from_buffer(mapping, 0)
        self.hdr = hdr
        self.slot_count = int(hdr.slot_count)
        self.max_readers = int(hdr.max_readers)
        self.shape = tuple(int(hdr.shape[i]) for i in range(hdr.ndim))
        ext = _read_ext(mapping)
        #: ``frames``, ``records`` or ``messages`` (see ``RING_KINDS``).
        self.kind = str(ext.get("kind", "frames"))
        self.dtype = parse_dtype(ext.get("dtype") or hdr.dtype.decode())
        self.frame_nbytes = int(hdr.frame_nbytes)
        self.readers = [
            ReaderRecord.from_buffer(mapping, hdr.readers_offset + i * ctypes.sizeof(ReaderRecord))
            for i in range(self.max_readers)
        ]
        self.meta = [
            SlotMeta.from_buffer(mapping, hdr.meta_offset + i * ctypes.sizeof(SlotMeta))
            for i in range(self.slot_count)
        ]
        self.views = [
            np.ndarray(
                self.shape,
                self.dtype,
                buffer=mapping,
                offset=hdr.slots_offset + i * hdr.slot_stride,
            )
            for i in range(self.slot_count)
        ]
        words = -(-self.max_readers // 8)
        self.waiting_words = (ctypes.c_uint64 * words).from_buffer(mapping, Header.waiting.offset)
        self.announce_words = (ctypes.c_uint64 * words).from_buffer(
            mapping, Header.announce_waiting.offset
        )
        self.read_views = [v.view() for v in self.views]
        for view in self.read_views:
            view.flags.writeable = False
        self.data_addr = ctypes.addressof(hdr) + Header.data_futex.offset
        self.space_addr = ctypes.addressof(hdr) + Header.space_futex.offset
        self.announce_addr = ctypes.addressof(hdr) + Header.announce_futex.offset

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
        slot_count: int,
        max_readers: int,
        kind: str = "frames",
    ) -> RingSegment:
        """Create and lay out a new segment; this process owns it.

        A structured dtype keeps its fields, and ``kind`` is stored, in the
        header page's extension (readers see both).

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
        if len(ext) > PAGE - _EXT_OFFSET - 4:
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
        layout = SegmentLayout.plan(shape, dt, slot_count, max_readers)
        free = shm_free_bytes()
        if layout.size > free:
            raise OSError(
                f"ring {name!r} needs {layout.size / 2**20:.1f} MiB but {SHM_DIR} has "
                f"{free / 2**20:.1f} MiB free; use fewer or smaller slots, or enlarge "
                f"{SHM_DIR} (docker: --shm-size)"
            )
        segment = cls.segment_name(name)
        path = os.path.join(SHM_DIR, segment)
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        try:
            # Reserve every page now: a full /dev/shm fails here with ENOSPC,
            # not later with SIGBUS in the middle of a frame.
            os.posix_fallocate(fd, 0, layout.size)
            mapping = mmap.mmap(fd, layout.size)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        hdr = Header.from_buffer(mapping, 0)
        hdr.version = LAYOUT_VERSION
        hdr.slot_count = slot_count
        hdr.max_readers = max_readers
        hdr.ndim = len(shape)
        for i, d in enumerate(shape):
            hdr.shape[i] = d
        hdr.dtype = dt.str.encode()
        hdr.frame_nbytes = layout.frame_nbytes
        hdr.slot_stride = layout.slot_stride
        hdr.readers_offset = layout.readers_offset
        hdr.meta_offset = layout.meta_offset
        hdr.slots_offset = layout.slots_offset
        hdr.owner_pid = os.getpid()
        if kind != "frames" or dt.names:
            data = ext.encode()
            struct.pack_into("<I", mapping, _EXT_OFFSET, len(data))
            mapping[_EXT_OFFSET + 4 : _EXT_OFFSET + 4 + len(data)] = data
        hdr.magic = MAGIC  # last: a half-made segment is not a ring
        del hdr
        return cls(segment, fd, mapping, owner=True)

    @classmethod
    def attach(cls, segment: str) -> RingSegment:
        """Map an existing segment by name.

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
            if size < PAGE:
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

    def slot_memory(self) -> tuple[int, int]:
        """The address and size of the slots (page-aligned)."""
        self.check_open()
        hdr = self.hdr
        start = ctypes.c_char.from_buffer(self.map, hdr.slots_offset)
        return ctypes.addressof(start), int(hdr.slot_stride) * self.slot_count

    def populate(self) -> None:
        """Map every slot's pages into this process now, writable
        (``MADV_POPULATE_WRITE``, Linux 5.14), so a writer's first lap
        around the ring takes no page faults: 2,048 of them per 8 MiB slot
        made the first 32 puts of a 2048x2048 ring take 10-30 ms instead of
        ~1 ms (BENCHMARKS.md, issue 25 item 4). Older kernels: a no-op.
        """
        self.check_open()
        hdr = self.hdr
        length = int(hdr.slot_stride) * self.slot_count
        try:
            self.map.madvise(_MADV_POPULATE_WRITE, int(hdr.slots_offset), length)
        except OSError:
            pass  # EINVAL before 5.14: the first lap faults the pages in

    def close(self) -> None:
        """Drop the views and unmap (a view a Frame still holds keeps the pages)."""
        if self.closed:
            return
        self.closed = True
        self.views.clear()
        self.read_views.clear()
        del self.waiting_words
        del self.announce_words
        self.readers.clear()
        self.meta.clear()
        del self.hdr
        try:
            self.map.close()
        except BufferError:
            pass  # a Frame still holds a view; the mapping goes with it
        os.close(self.fd)

    def unlink(self) -> None:
        """Remove the segment's name; mappings stay valid."""
        try:
            os.unlink(os.path.join(SHM_DIR, self.name))
        except FileNotFoundError:
            pass

    def check_open(self) -> None:
        if self.closed:
            raise RingClosedError(f"ring {self.name!r} was closed in this process")

    @contextlib.contextmanager
    def registration(self) -> Iterator[None]:
        """Hold the segment's lock while readers or the writer register."""
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def drop_reader(self, rec: ReaderRecord) -> None:
        """Mark a dead reader lost, so it stops holding the writer back."""
        rec.state = ReaderState.LOST
        self.hdr.readers_lost += 1
        self.hdr.space_futex = (self.hdr.space_futex + 1) & 0xFFFFFFFF
        futex_wake(self.space_addr)


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


def _read_ext(mapping: mmap.mmap) -> dict[str, Any]:
    """The header page's JSON extension (kind, structured dtype), or ``{}``."""
    (length,) = struct.unpack_from("<I", mapping, _EXT_OFFSET)
    if not 0 < length <= PAGE - _EXT_OFFSET - 4:
        return {}
    try:
        ext = json.loads(bytes(mapping[_EXT_OFFSET + 4 : _EXT_OFFSET + 4 + length]))
    except ValueError:
        return {}
    return ext if isinstance(ext, dict) else {}
