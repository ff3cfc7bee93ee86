"""Bitshuffle-LZ4 chunks as HDF5's bitshuffle filter (id 32008) reads them.

The one module of rigd that imports ``bitshuffle``. Format (big-endian):
the uncompressed size (u64), the block size in bytes (u32), then
bitshuffle's own stream of blocks (``bitshuffle.compress_lz4``: each block
bit-transposed, then LZ4-compressed, with its size). The block is
bitshuffle's default: about 8 KiB of elements, a multiple of 8. The filter
options ``(0, 2)`` say "default block size, LZ4", as hdf5plugin's
``Bitshuffle(cname="lz4")`` writes them. ``compress_lz4`` lets go of the
GIL while it works.
"""

from __future__ import annotations

import struct
from typing import Any

import bitshuffle
import numpy as np

#: HDF5's registered id of the bitshuffle filter (hdf5plugin's ``Bitshuffle``).
FILTER_ID = 32008
_BSHUF_LZ4 = 2
#: The filter's client options: default block size, LZ4 compression.
FILTER_OPTIONS = (0, _BSHUF_LZ4)
_TARGET_BLOCK_BYTES = 8192


def block_elements(itemsize: int) -> int:
    """bitshuffle's default block: about 8 KiB of elements, a multiple of 8."""
    return max(128, (_TARGET_BLOCK_BYTES // itemsize) // 8 * 8)


def compress(chunk: np.ndarray[Any, Any]) -> bytes:
    """``chunk`` (C-contiguous) as the filter's bytes: header, then bitshuffle's stream."""
    itemsize = chunk.dtype.itemsize
    block = block_elements(itemsize)
    body = bitshuffle.compress_lz4(chunk.reshape(-1), block)
    header = struct.pack(">QI", chunk.nbytes, block * itemsize)
    return b"".join((header, memoryview(body)))
