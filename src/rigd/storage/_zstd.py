"""Zstandard chunks as HDF5's Zstd filter (id 32015) reads them, through ``zstandard``.

The one module of rigd that imports ``zstandard``. Format: one zstd frame
that records its content size (the filter sizes its output from it), at
level 1. ``ZstdCompressor.compress`` lets go of the GIL; a compressor may
not be used by two threads at once, so each thread of the recorder's pool
keeps its own.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import zstandard

#: HDF5's registered id of the Zstd filter (hdf5plugin's ``Zstd``).
FILTER_ID = 32015
LEVEL = 1
#: The filter's client options: the compression level.
FILTER_OPTIONS = (LEVEL,)

_local = threading.local()


def compress(chunk: np.ndarray[Any, Any]) -> bytes:
    """``chunk`` (C-contiguous) as one zstd frame with its content size."""
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(
            level=LEVEL, write_content_size=True
        )
    return bytes(compressor.compress(chunk.data.cast("B")))
