"""Chunk compression for the recorder: the formats and who writes them.

The recorder writes compressed chunks with HDF5's direct chunk write, so it
compresses them itself, in worker threads, into exactly the bytes that
hdf5plugin's HDF5 filters decode (and HDF5's own tools with those filters
as plugins, and silx). Each format's compressor is a maintained library's
public API, one module per library (chosen by measurement: BENCHMARKS.md,
"Chunk compressors"); each lets go of the GIL while it compresses, so
several chunks compress at once and acquisition never waits on them:

- ``lz4``: HDF5's LZ4 filter (32004), by python-lz4 (``_lz4``);
- ``zstd``: the Zstd filter (32015) at level 1, by zstandard (``_zstd``);
- ``bitshuffle-lz4``: the bitshuffle filter (32008) with LZ4, by
  bitshuffle (``_bitshuffle``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rigd.storage import _bitshuffle, _lz4, _zstd

__all__ = ["CODECS", "COMPRESSION_CHOICES", "Codec", "codec"]


@dataclass(frozen=True)
class Codec:
    """One compression: its HDF5 filter and a thread-safe ``compress``."""

    name: str
    filter_id: int
    #: The filter's client options (``cd_values``), as hdf5plugin sets them.
    filter_options: tuple[int, ...]
    _compress: Callable[[np.ndarray[Any, Any]], bytes]

    def compress(self, chunk: np.ndarray[Any, Any]) -> bytes:
        """Return ``chunk`` compressed to the bytes the HDF5 filter decodes.

        Raises:
            ValueError: ``chunk`` is not C-contiguous.
        """
        if not chunk.flags.c_contiguous:
            raise ValueError("a chunk to compress must be C-contiguous")
        return self._compress(chunk)


CODECS: dict[str, Codec] = {
    "lz4": Codec("lz4", _lz4.FILTER_ID, _lz4.FILTER_OPTIONS, _lz4.compress),
    "zstd": Codec("zstd", _zstd.FILTER_ID, _zstd.FILTER_OPTIONS, _zstd.compress),
    "bitshuffle-lz4": Codec(
        "bitshuffle-lz4", _bitshuffle.FILTER_ID, _bitshuffle.FILTER_OPTIONS, _bitshuffle.compress
    ),
}


def codec(name: str) -> Codec:
    """The codec called ``name``.

    Raises:
        ValueError: no such codec; the message lists the choices.
    """
    try:
        return CODECS[name]
    except (KeyError, TypeError):  # TypeError: not hashable (a list)
        raise ValueError(f"unknown compression {name!r}: {COMPRESSION_CHOICES}") from None


#: What a compression may be, in the words the pipeline file's ``recording:``
#: block uses for it (its pydantic ``Literal``), with ``None`` added.
COMPRESSION_CHOICES = (
    "should be "
    + ", ".join(repr(n) for n in list(CODECS)[:-1])
    + f" or {list(CODECS)[-1]!r}, or null (uncompressed)"
)
