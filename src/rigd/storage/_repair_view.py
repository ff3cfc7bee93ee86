"""A run file as ``repair_superblock`` would leave it, read without writing a byte.

A writer killed mid-run, or stopped by a full disk, can leave its file shorter than the end-of-file
address its superblock records: chunks get their file space before their
bytes are written (``_chunk_io``), so the last few chunks' space may lie
past the physical end. Such a file is whole: every piece of HDF5 metadata
its last flush wrote is there, and ``recover_run`` extends it with zeros.
A partial copy (``head -c``, a transfer cut short) is short too, but its
metadata is gone, and extending it would turn a 100 kB fragment into a
file of the original's size that no HDF5 reader can open.

``RepairedView`` tells the two apart before anything is written: it is a
read-only file object (h5py's ``fileobj`` driver) that shows the file at
its recorded size, zeros past the physical end, and the open-for-write
mark cleared. If h5py opens it, ``recover_run``'s reads succeed and every
frame it would keep lies within the file, nothing recorded is missing; if
HDF5 meets zeros where metadata should be (a bad signature or checksum), or
a kept frame lies past the end, the file is truncated and is refused. A
sealed file short of its recorded end is always truncated (its writer
wrote everything before sealing); so is one whose write error (a full
disk) left it short with a kept frame past its end.
"""

from __future__ import annotations

import io
import os
import struct

from rigd.storage._superblock import Superblock, lookup3

__all__ = ["RepairedView"]


class RepairedView(io.RawIOBase):
    """Read-only view of ``path`` as ``block`` repaired would be (see the module)."""

    def __init__(self, path: str | os.PathLike[str], block: Superblock) -> None:
        super().__init__()
        self._file: io.BufferedReader = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._size = os.fstat(self._file.fileno()).st_size
        self._end = max(self._size, block.end_of_file)
        self._pos = 0
        self._patch = b""
        self._patch_at = block.offset
        if block.version >= 2 and block.open_for_write:
            self._file.seek(block.offset)
            raw = bytearray(self._file.read(block.size))
            raw[11] = 0
            struct.pack_into("<I", raw, block.size - 4, lookup3(bytes(raw[: block.size - 4])))
            self._patch = bytes(raw)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._end}[whence]
        self._pos = base + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        n = max(0, min(len(out), self._end - self._pos))
        start = self._pos
        real = max(0, min(n, self._size - start))
        if real:
            self._file.seek(start)
            got = self._file.readinto(out[:real]) or 0
            out[got:real] = bytes(real - got)
        out[real:n] = bytes(n - real)
        if self._patch:
            lo = max(start, self._patch_at)
            hi = min(start + n, self._patch_at + len(self._patch))
            if lo < hi:
                at = self._patch_at
                out[lo - start : hi - start] = self._patch[lo - at : hi - at]
        self._pos = start + n
        return n

    def close(self) -> None:
        self._file.close()
        super().close()
