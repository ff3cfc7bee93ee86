#!/usr/bin/env python3
"""Chunk compressors: which library writes the recorder's compressed chunks.

The recorder compresses each chunk itself into the bytes an HDF5 filter
decodes (lz4: filter 32004, zstd level 1: 32015, bitshuffle-lz4: 32008).
For each format this compares the libraries that can write it through a
public API, on the demo's frames (``SimulatedCamera``'s ``spot`` pattern,
512x512 uint16) and on the record bench's 2048x2048 frames:

- hdf5plugin's filter library called by ctypes (what rigd did before: the peer);
- imagecodecs (``lz4h5_encode``, ``zstd_encode``);
- python-lz4 (``lz4.block``), zstandard, bitshuffle (``compress_lz4``);
- blosc2 (bitshuffle + lz4 in blosc2's own frame, filter 32026: another
  format, for reference).

Figures: MB of input per second of the process's CPU time (best of 5
passes; CPU time, not wall time, so the figure holds on a busy machine),
the compression ratio, and whether the call lets go of the GIL (how far a
second Python thread gets while it runs, against while idle: ~1 lets go,
~0 holds it; the recorder compresses in a thread pool).

    .venv/bin/python bench/codecs.py
"""

from __future__ import annotations

import ctypes
import importlib.util
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

Compress = Callable[[np.ndarray], bytes]


def demo_frames(count: int = 8) -> list[np.ndarray]:
    """The demo camera's frames: a gaussian spot moving over a noisy base."""
    h = w = 512
    rng = np.random.default_rng(0)
    base = rng.normal(100, 5, (h, w)).clip(0).astype(np.float32)
    y = np.arange(h, dtype=np.float32)
    x = np.arange(w, dtype=np.float32)
    sigma = max(2.0, min(h, w) / 20)
    frames = []
    for k in range(count):
        angle = 2 * np.pi * (k % 200) / 200
        cy, cx = h / 2 + h / 4 * np.sin(angle), w / 2 + w / 4 * np.cos(angle)
        gy = np.exp(-((y - cy) ** 2) / (2 * sigma**2)) * 1000.0
        gx = np.exp(-((x - cx) ** 2) / (2 * sigma**2))
        frames.append((np.multiply.outer(gy, gx) + base).astype(np.uint16))
    return frames


def record_frames(count: int = 4) -> list[np.ndarray]:
    """bench/record.py's realistic 2048x2048 frames."""
    shape = (2048, 2048)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    out = []
    for k in range(count):
        rng = np.random.default_rng(k)
        image = 1000 + 400 * np.sin((xx + 3 * k) / 37.0) * np.cos(yy / 53.0)
        out.append((image + rng.normal(0, 12, shape)).astype(np.uint16))
    return out


def _ctypes_library() -> Any:
    spec = importlib.util.find_spec("hdf5plugin")
    assert spec is not None
    assert spec.origin is not None
    lib = ctypes.CDLL(str(Path(spec.origin).parent / "plugins" / "libh5bshuf.so"))
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


def ctypes_compressors() -> dict[str, Compress]:
    """The old way: hdf5plugin's own filter library, by ctypes."""
    lib = _ctypes_library()

    def lz4(a: np.ndarray) -> bytes:
        n = a.nbytes
        bound = lib.LZ4_compressBound(n)
        out = ctypes.create_string_buffer(16 + max(bound, n))
        size = lib.LZ4_compress_default(a.ctypes.data, ctypes.addressof(out) + 16, n, bound)
        struct.pack_into(">QII", out, 0, n, n, size)
        return out.raw[: 16 + size]

    def zstd(a: np.ndarray) -> bytes:
        bound = lib.ZSTD_compressBound(a.nbytes)
        out = ctypes.create_string_buffer(bound)
        size = lib.ZSTD_compress(ctypes.addressof(out), bound, a.ctypes.data, a.nbytes, 1)
        return out.raw[:size]

    def bslz4(a: np.ndarray) -> bytes:
        count, item = a.size, a.dtype.itemsize
        block = max(128, (8192 // item) // 8 * 8)
        bound = lib.bshuf_compress_lz4_bound(count, item, block)
        out = ctypes.create_string_buffer(12 + bound)
        size = lib.bshuf_compress_lz4(a.ctypes.data, ctypes.addressof(out) + 12, count, item, block)
        struct.pack_into(">QI", out, 0, a.nbytes, block * item)
        return out.raw[: 12 + size]

    return {"lz4": lz4, "zstd": zstd, "bitshuffle-lz4": bslz4}


def library_compressors() -> list[tuple[str, str, Compress]]:
    import bitshuffle
    import blosc2
    import imagecodecs
    import lz4.block
    import zstandard

    zctx = zstandard.ZstdCompressor(level=1)

    def python_lz4(a: np.ndarray) -> bytes:
        n = a.nbytes
        block = lz4.block.compress(a, store_size=False)
        return struct.pack(">QII", n, n, len(block)) + block

    def bitshuffle_lz4(a: np.ndarray) -> bytes:
        block = max(128, (8192 // a.dtype.itemsize) // 8 * 8)
        body = bitshuffle.compress_lz4(a.reshape(-1), block)
        return struct.pack(">QI", a.nbytes, block * a.dtype.itemsize) + body.tobytes()

    return [
        ("lz4", "imagecodecs.lz4h5_encode", lambda a: imagecodecs.lz4h5_encode(a)),
        ("lz4", "lz4.block.compress", python_lz4),
        ("zstd", "imagecodecs.zstd_encode(level=1)", lambda a: imagecodecs.zstd_encode(a, 1)),
        ("zstd", "zstandard.ZstdCompressor(level=1)", lambda a: zctx.compress(a)),
        ("bitshuffle-lz4", "bitshuffle.compress_lz4", bitshuffle_lz4),
        (
            "blosc2 (other format)",
            "blosc2.compress2(BITSHUFFLE, LZ4)",
            lambda a: blosc2.compress2(
                a, codec=blosc2.Codec.LZ4, filters=[blosc2.Filter.BITSHUFFLE], clevel=5
            ),
        ),
    ]


def speed(fn: Compress, frames: list[np.ndarray], rounds: int = 5) -> tuple[float, float]:
    """(MB of input per CPU second, ratio): the process's CPU time
    (``time.process_time``, every thread's: bitshuffle and blosc2 compress
    with threads of their own), so other load on the machine does not
    count; the best of ``rounds`` passes over ``frames``."""
    ratio = sum(f.nbytes for f in frames) / sum(len(fn(f)) for f in frames)
    best = 0.0
    for _ in range(rounds):
        start = time.process_time()
        for frame in frames:
            fn(frame)
        took = time.process_time() - start
        best = max(best, sum(f.nbytes for f in frames) / max(took, 1e-9) / 1e6)
    return best, ratio


def lets_go_of_the_gil(fn: Compress, frame: np.ndarray, seconds: float = 0.3) -> float:
    """How far a second Python thread gets while ``fn`` runs, against while
    the caller sleeps as long: about 1 when ``fn`` lets go of the GIL, about
    0 when it holds it."""
    count = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal count
        while not stop.is_set():
            count += 1

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        start, before = time.perf_counter(), count
        while time.perf_counter() - start < seconds:
            fn(frame)
        busy = time.perf_counter() - start
        during = count - before
        before = count
        time.sleep(busy)
        idle = count - before
    finally:
        stop.set()
        thread.join()
    return during / max(idle, 1)


def main() -> None:
    sets = {"demo 512x512": demo_frames(), "record 2048x2048": record_frames()}
    old = ctypes_compressors()
    rows = [(fmt, "hdf5plugin's library by ctypes (before)", fn) for fmt, fn in old.items()]
    rows += library_compressors()
    rows.sort(key=lambda r: ["lz4", "zstd", "bitshuffle-lz4"].index(r[0]) if r[0] in old else 9)
    print("| format | library | frames | MB/s per CPU second | ratio | other thread runs |")
    print("|---|---|---|---|---|---|")
    for fmt, name, fn in rows:
        for label, frames in sets.items():
            mb_s, ratio = speed(fn, frames)
            gil = lets_go_of_the_gil(fn, frames[0])
            print(f"| {fmt} | {name} | {label} | {mb_s:,.0f} | {ratio:.2f} | {gil:.2f} |")


if __name__ == "__main__":
    main()
