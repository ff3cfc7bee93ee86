"""Raw chunks written with ``O_DIRECT``: from the frame's memory to the disk,
past the page cache.

Why (a trace, BENCHMARKS.md "Issue 25 item 4"): on the development VM an
8 MiB buffered ``pwrite`` took 20 ms at the median and up to 350 ms, and the
writing thread was *running* (``R`` in ``/proc/<pid>/task/*/wchan``, not
asleep in ``balance_dirty_pages`` or on the journal): the time is the copy
into the page cache, 8-25 ms of CPU per 8 MiB. On two loaded cores that
copy is what the recorder could not get CPU for, so it fell behind the
camera. ``O_DIRECT`` lets the device read the frame where it is (a ring
slot, a pooled buffer): about 1 ms of CPU per 8 MiB there, and the thread
sleeps while the disk works.

``O_DIRECT`` needs the buffer's address, the length and the file offset to
be multiples of the device's block size (``ALIGN``, 4 KiB, covers 512-byte
and 4 KiB devices). Run files are created with HDF5's alignment
(``H5Pset_alignment``) so raw chunks start on 4 KiB; ring slots are page
aligned and pooled chunk buffers come from ``aligned_empty``. Anything not
aligned, and any filesystem that refuses ``O_DIRECT`` (tmpfs on older
kernels answers ``EINVAL``), goes through the ordinary descriptor instead:
the result in the file is the same.

Readers stay coherent: the kernel writes back and drops cached pages of a
range before an ``O_DIRECT`` write to it, and HDF5 never writes into a raw
chunk's pages (no fill, early allocation). Durability is unchanged: the
housekeeper's ``fsync`` flushes the device's cache for the whole file.
"""

from __future__ import annotations

import errno
import logging
import os
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: Address, length and offset of an O_DIRECT write are multiples of this.
ALIGN = 4096


def aligned_empty(shape: tuple[int, ...], dtype: np.dtype[Any]) -> np.ndarray[Any, Any]:
    """A zeroed array whose data starts on an ``ALIGN`` boundary (for O_DIRECT)."""
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    raw = np.zeros(nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def pwrite_all(fd: int, data: np.ndarray[Any, Any] | memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (os.pwrite may write less)."""
    view = data if isinstance(data, memoryview) else np.ascontiguousarray(data).data.cast("B")
    while view:
        done = os.pwrite(fd, view, offset)
        view = view[done:]
        offset += done


class ChunkWriter:
    """Puts raw chunk bytes at their offsets: O_DIRECT where it can, else buffered.

    Args:
        path: the run file (opened a second time, with ``O_DIRECT``).
        fd: the ordinary descriptor (a duplicate of HDF5's), for what is
            not aligned and for filesystems without ``O_DIRECT``.
        direct: False: never O_DIRECT (``RunWriter(direct_io=False)``).
    """

    def __init__(self, path: str | os.PathLike[str], fd: int, direct: bool = True) -> None:
        self.fd = fd
        self.direct_fd: int | None = None
        #: Bytes written each way, for the statistics and the tests.
        self.direct_bytes = 0
        self.buffered_bytes = 0
        if direct and hasattr(os, "O_DIRECT"):
            try:
                self.direct_fd = os.open(path, os.O_WRONLY | os.O_DIRECT | os.O_CLOEXEC)
            except OSError as exc:
                log.info("%s: no O_DIRECT (%s); raw chunks go through the page cache", path, exc)

    def write(self, data: np.ndarray[Any, Any], offset: int) -> None:
        """Write ``data`` (C-contiguous) at ``offset`` in the file.

        The whole blocks go with O_DIRECT when the address and offset are
        aligned; a tail of less than a block, and anything else, buffered.
        """
        array = np.ascontiguousarray(data)
        view = array.data.cast("B")
        nbytes = len(view)
        fd = self.direct_fd
        done = 0
        if fd is not None and not (offset % ALIGN or array.ctypes.data % ALIGN):
            try:
                done = self._write_direct(fd, view[: nbytes - nbytes % ALIGN], offset)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    raise
                # The file system took O_DIRECT at open but not this write.
                log.info("O_DIRECT write refused (%s); raw chunks go through the page cache", exc)
                self.close_direct()
        if done < nbytes:
            pwrite_all(self.fd, view[done:], offset + done)
            self.buffered_bytes += nbytes - done

    def _write_direct(self, fd: int, view: memoryview, offset: int) -> int:
        """Write whole blocks; return how many bytes went (a short write stops it)."""
        written = 0
        while written < len(view):
            done = os.pwrite(fd, view[written:], offset + written)
            written += done
            self.direct_bytes += done
            if done == 0 or done % ALIGN:
                break  # off the block size: the caller writes the rest buffered
        return written

    def close_direct(self) -> None:
        """Close the O_DIRECT descriptor (the ordinary one is the caller's)."""
        fd, self.direct_fd = self.direct_fd, None
        if fd is not None:
            os.close(fd)
