"""The HDF5 superblock's file-consistency flags: read them, and clear them.

A SWMR writer marks the file open for writing (flags in the version 2/3
superblock) and clears the mark on a clean close. A writer that crashed
leaves the mark, and HDF5 then refuses every open but a SWMR read, naming
``h5clear``. ``rigd recover`` clears the mark itself, as ``h5clear -s``
does, so recovery needs no HDF5 command-line tools: it rewrites one byte and
the superblock's checksum (Bob Jenkins' lookup3, as HDF5 computes it).

Layout of a version 2/3 superblock (HDF5 file format, section II.A)::

    signature (8)  version (1)  size of offsets (1)  size of lengths (1)
    flags (1)  base address  extension address  end-of-file address
    root group address  checksum (4)
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

__all__ = [
    "Superblock",
    "lookup3",
    "read_superblock",
    "repair_superblock",
    "truncated_message",
]

SIGNATURE = b"\x89HDF\r\n\x1a\n"
# Flag bits: the file is open for write, and for SWMR write.
WRITE_ACCESS = 0x01
SWMR_WRITE_ACCESS = 0x04
_MASK = 0xFFFFFFFF


def _rot(x: int, k: int) -> int:
    return ((x << k) | (x >> (32 - k))) & _MASK


def lookup3(data: bytes, initval: int = 0) -> int:
    """Bob Jenkins' lookup3 ``hashlittle``, byte by byte, as ``H5_checksum_lookup3``."""
    length = len(data)
    a = b = c = (0xDEADBEEF + length + initval) & _MASK
    i = 0
    while length > 12:
        a = (a + int.from_bytes(data[i : i + 4], "little")) & _MASK
        b = (b + int.from_bytes(data[i + 4 : i + 8], "little")) & _MASK
        c = (c + int.from_bytes(data[i + 8 : i + 12], "little")) & _MASK
        a = ((a - c) & _MASK) ^ _rot(c, 4)
        c = (c + b) & _MASK
        b = ((b - a) & _MASK) ^ _rot(a, 6)
        a = (a + c) & _MASK
        c = ((c - b) & _MASK) ^ _rot(b, 8)
        b = (b + a) & _MASK
        a = ((a - c) & _MASK) ^ _rot(c, 16)
        c = (c + b) & _MASK
        b = ((b - a) & _MASK) ^ _rot(a, 19)
        a = (a + c) & _MASK
        c = ((c - b) & _MASK) ^ _rot(b, 4)
        b = (b + a) & _MASK
        length -= 12
        i += 12
    if length == 0:
        return c
    tail = data[i:] + bytes(12 - length)
    a = (a + int.from_bytes(tail[0:4], "little")) & _MASK
    b = (b + int.from_bytes(tail[4:8], "little")) & _MASK
    c = (c + int.from_bytes(tail[8:12], "little")) & _MASK
    c = ((c ^ b) - _rot(b, 14)) & _MASK
    a = ((a ^ c) - _rot(c, 11)) & _MASK
    b = ((b ^ a) - _rot(a, 25)) & _MASK
    c = ((c ^ b) - _rot(b, 16)) & _MASK
    a = ((a ^ c) - _rot(c, 4)) & _MASK
    b = ((b ^ a) - _rot(a, 14)) & _MASK
    return ((c ^ b) - _rot(b, 24)) & _MASK


@dataclass(frozen=True)
class Superblock:
    """Where a file's superblock is and what its flags and end-of-file say."""

    offset: int
    version: int
    flags: int
    end_of_file: int
    size: int

    @property
    def open_for_write(self) -> bool:
        return bool(self.flags & (WRITE_ACCESS | SWMR_WRITE_ACCESS))


def read_superblock(path: str | os.PathLike[str]) -> Superblock:
    """Find and parse the superblock (at 0, 512, 1024, ... as HDF5 looks).

    Raises:
        ValueError: the file is not HDF5.
    """
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        offset = 0
        while offset + len(SIGNATURE) <= file_size:
            f.seek(offset)
            head = f.read(12)
            if head[:8] == SIGNATURE:
                version = head[8]
                if version < 2:
                    # Versions 0 and 1 have no consistency flags: nothing to clear.
                    return Superblock(offset, version, 0, file_size, 0)
                size_of_offsets = head[9]
                f.seek(offset)
                size = 12 + 4 * size_of_offsets + 4
                raw = f.read(size)
                fmt = {4: "<I", 8: "<Q"}[size_of_offsets]
                eof_at = 12 + 2 * size_of_offsets
                (end_of_file,) = struct.unpack_from(fmt, raw, eof_at)
                return Superblock(offset, version, head[11], end_of_file, size)
            offset = 512 if offset == 0 else offset * 2
    raise ValueError(f"{os.fspath(path)} is not an HDF5 file (no superblock signature)")


def truncated_message(path: str | os.PathLike[str], size: int, end_of_file: int) -> str:
    """The refusal of a truncated file (``rigd recover``, ``inspect``, ``export``,
    ``reprocess``: ``_run_whole.check_whole``): names it, both sizes, and the fix."""
    return (
        f"{os.fspath(path)} is truncated: it holds {size} bytes but its superblock says "
        f"the file ends at byte {end_of_file}, and what it recorded past byte {size} is "
        "missing (a partial copy?); nothing was changed. Copy the whole file again "
        "from its source"
    )


def repair_superblock(path: str | os.PathLike[str]) -> bool:
    """Undo what a crashed or failed writer left; return whether anything changed.

    - Clears the writer's open-for-write mark.
    - Extends a file that ends before the end-of-file address its superblock
      records (the writer died or hit a full disk before its last bytes
      reached the file), which HDF5 refuses as truncated. The bytes added
      are zeros that no flushed metadata points to.
    """
    block = read_superblock(path)
    if block.version < 2:
        return False
    changed = False
    with open(path, "r+b") as f:
        if os.fstat(f.fileno()).st_size < block.end_of_file:
            f.truncate(block.end_of_file)
            changed = True
        if block.open_for_write:
            f.seek(block.offset)
            raw = bytearray(f.read(block.size))
            raw[11] = 0
            struct.pack_into("<I", raw, block.size - 4, lookup3(bytes(raw[: block.size - 4])))
            f.seek(block.offset)
            f.write(raw)
            changed = True
        if changed:
            f.flush()
            os.fsync(f.fileno())
    return changed
