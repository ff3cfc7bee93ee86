"""Chunk compression for the recorder, off the writer's thread.

The recorder writes compressed chunks with HDF5's direct chunk write, so it
compresses them itself, in worker threads, into exactly the bytes that
hdf5plugin's HDF5 filters decode. The compressors are the C functions inside
hdf5plugin's own filter libraries, called through ctypes: ctypes releases the
GIL for the call, so several chunks compress at once and acquisition never
waits on them. This module finds those libraries without importing
hdf5plugin (which imports h5py: only ``_hdf5`` may do that).

Formats (all sizes big-endian), as the filters read them:

- lz4 (filter 32004): uncompressed size (u64), block size (u32), then per
  block its compressed size (u32) and the LZ4 block; a block that does not
  shrink is stored raw, its size equal to the block size.
- zstd (filter 32015): one zstd frame, which records its content size.
- bitshuffle-lz4 (filter 32008, compression 2): uncompressed size (u64),
  block size in bytes (u32), then bitshuffle's own stream.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CODECS", "Codec", "codec"]

_LZ4_FILTER = 32004
_ZSTD_FILTER = 32015
_BITSHUFFLE_FILTER = 32008
_BSHUF_LZ4 = 2
_ZSTD_LEVEL = 1
_BSHUF_TARGET_BLOCK_BYTES = 8192


def _find_library() -> ctypes.CDLL:
    spec = importlib.util.find_spec("hdf5plugin")
    if spec is None or spec.origin is None:
        raise RuntimeError(
            "compressed recording needs hdf5plugin; install it with `pip install hdf5plugin`"
        )
    # bitshuffle's filter library carries LZ4 and zstd too.
    path = Path(spec.origin).parent / "plugins" / "libh5bshuf.so"
    if not path.exists():
        raise RuntimeError(f"hdf5plugin has no {path.name} at {path}; reinstall hdf5plugin")
    lib = ctypes.CDLL(str(path))
    size_t, void_p = ctypes.c_size_t, ctypes.c_void_p
    lib.LZ4_compressBound.restype = ctypes.c_int
    lib.LZ4_compressBound.argtypes = [ctypes.c_int]
    lib.LZ4_compress_default.restype = ctypes.c_int
    lib.LZ4_compress_default.argtypes = [void_p, void_p, ctypes.c_int, ctypes.c_int]
    lib.ZSTD_compressBound.restype = size_t
    lib.ZSTD_compressBound.argtypes = [size_t]
    lib.ZSTD_compress.restype = size_t
    lib.ZSTD_compress.argtypes = [void_p, size_t, void_p, size_t, ctypes.c_int]
    lib.bshuf_compress_lz4_bound.restype = size_t
    lib.bshuf_compress_lz4_bound.argtypes = [size_t, size_t, size_t]
    lib.bshuf_compress_lz4.restype = ctypes.c_int64
    lib.bshuf_compress_lz4.argtypes = [void_p, void_p, size_t, size_t, size_t]
    return lib


@functools.cache
def _library() -> ctypes.CDLL:
    return _find_library()


def _address(buffer: Any) -> tuple[int, int]:
    array = np.asarray(buffer)
    if not array.flags.c_contiguous:
        raise ValueError("a chunk to compress must be C-contiguous")
    return array.ctypes.data, array.nbytes


@dataclass(frozen=True)
class Codec:
    """One compression: its HDF5 filter and a thread-safe ``compress``."""

    name: str
    filter_id: int
    #: The filter's client options, as hdf5plugin would set them.
    filter_options: tuple[int, ...]

    def compress(self, chunk: np.ndarray[Any, Any]) -> bytes:
        """Return ``chunk`` compressed to the bytes the HDF5 filter decodes."""
        src, nbytes = _address(chunk)
        if self.filter_id == _LZ4_FILTER:
            return _lz4(src, nbytes)
        if self.filter_id == _ZSTD_FILTER:
            return _zstd(src, nbytes)
        return _bitshuffle_lz4(src, nbytes, chunk.dtype.itemsize)

    def check_available(self) -> None:
        """Raise a clear error now if the compressor's library is missing."""
        _library()


def _lz4(src: int, nbytes: int) -> bytes:
    lib = _library()
    bound = lib.LZ4_compressBound(nbytes)
    out = ctypes.create_string_buffer(16 + max(bound, nbytes))
    size = lib.LZ4_compress_default(src, ctypes.addressof(out) + 16, nbytes, bound)
    if size <= 0 or size >= nbytes:
        # Incompressible: the filter takes a block whose size equals the
        # block size as stored raw.
        ctypes.memmove(ctypes.addressof(out) + 16, src, nbytes)
        size = nbytes
    struct.pack_into(">QII", out, 0, nbytes, nbytes, size)
    return out.raw[: 16 + size]


def _zstd(src: int, nbytes: int) -> bytes:
    lib = _library()
    bound = lib.ZSTD_compressBound(nbytes)
    out = ctypes.create_string_buffer(bound)
    size = lib.ZSTD_compress(ctypes.addressof(out), bound, src, nbytes, _ZSTD_LEVEL)
    if size > bound:  # zstd reports errors as huge sizes
        raise RuntimeError(f"zstd failed to compress a chunk of {nbytes} bytes (code {size})")
    return out.raw[:size]


def _bitshuffle_block(itemsize: int) -> int:
    # bitshuffle's own default: about 8 KiB of elements, a multiple of 8.
    return max(128, (_BSHUF_TARGET_BLOCK_BYTES // itemsize) // 8 * 8)


def _bitshuffle_lz4(src: int, nbytes: int, itemsize: int) -> bytes:
    lib = _library()
    count = nbytes // itemsize
    block = _bitshuffle_block(itemsize)
    bound = lib.bshuf_compress_lz4_bound(count, itemsize, block)
    out = ctypes.create_string_buffer(12 + bound)
    size = lib.bshuf_compress_lz4(src, ctypes.addressof(out) + 12, count, itemsize, block)
    if size < 0:
        raise RuntimeError(f"bitshuffle failed to compress a chunk of {nbytes} bytes ({size})")
    struct.pack_into(">QI", out, 0, nbytes, block * itemsize)
    return out.raw[: 12 + size]


CODECS: dict[str, Codec] = {
    "lz4": Codec("lz4", _LZ4_FILTER, (0,)),
    "zstd": Codec("zstd", _ZSTD_FILTER, (_ZSTD_LEVEL,)),
    "bitshuffle-lz4": Codec("bitshuffle-lz4", _BITSHUFFLE_FILTER, (0, _BSHUF_LZ4)),
}


def codec(name: str) -> Codec:
    """The codec called ``name``; a clear error listing the choices otherwise."""
    try:
        found = CODECS[name]
    except KeyError:
        raise ValueError(
            f"unknown compression {name!r}; choose one of {sorted(CODECS)} or None"
        ) from None
    found.check_available()
    return found
