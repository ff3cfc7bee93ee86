"""LZ4 chunks as HDF5's LZ4 filter (id 32004) reads them, through python-lz4.

The one module of rigd that imports ``lz4``. Format (big-endian): the
uncompressed size (u64), the block size (u32), then per block its
compressed size (u32) and the LZ4 block. rigd writes one block per chunk;
a block that does not shrink is stored raw, its size equal to the block
size (the filter copies it as it is). ``lz4.block.compress`` lets go of
the GIL, so the recorder's pool compresses several chunks at once.
"""

from __future__ import annotations

import struct
from typing import Any

import lz4.block
import numpy as np

#: HDF5's registered id of the LZ4 filter (hdf5plugin's ``LZ4``).
FILTER_ID = 32004
#: The filter's client options: 0, its default block size.
FILTER_OPTIONS = (0,)


def compress(chunk: np.ndarray[Any, Any]) -> bytes:
    """``chunk`` (C-contiguous) as the filter's bytes: header, then one block."""
    nbytes = chunk.nbytes
    block = lz4.block.compress(chunk, mode="default", store_size=False)
    if len(block) >= nbytes:
        # Incompressible: the filter takes a block whose size equals the
        # block size as stored raw.
        return b"".join((struct.pack(">QII", nbytes, nbytes, nbytes), chunk.data.cast("B")))
    return b"".join((struct.pack(">QII", nbytes, nbytes, len(block)), block))
