#!/usr/bin/env python3
"""The recorder's write path in CPU time: what a refactor of the writer must keep.

``bench/record.py`` measures recording against the disk, in wall time; on a
busy machine its figures move with the load and the host's cache. This
measures the writer's own cost: the process's CPU time (every thread's:
the caller's ``write``, the I/O thread, the compression pool, the
housekeeping) per frame, recording to /dev/shm, for small frames
(64x64 uint16, many per chunk), the demo's 512x512 uint16 frames raw, and
the same compressed with each codec. The peer is another tree of rigd
(``--against SRC``): the two run alternately, in child processes, 3 times
each; the ratios are this tree's CPU per frame over the other's (best of
the runs).

    .venv/bin/python bench/record_cpu.py --against /path/to/main/src
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from cpu_ab import ab_main

from rigd.storage import RunWriter, StreamSpec

CASES = {
    "64x64 raw": ((64, 64), None, 20_000),
    "512x512 raw": ((512, 512), None, 1_000),
    "512x512 lz4": ((512, 512), "lz4", 400),
    "512x512 zstd": ((512, 512), "zstd", 400),
    "512x512 bitshuffle-lz4": ((512, 512), "bitshuffle-lz4", 400),
}


def demo_frames(shape: tuple[int, int], count: int = 8) -> list[np.ndarray]:
    """A gaussian spot moving over a noisy base, as the demo camera's."""
    h, w = shape
    base = np.random.default_rng(0).normal(100, 5, shape).clip(0)
    y, x = np.arange(h)[:, None], np.arange(w)[None, :]
    out = []
    for k in range(count):
        cy, cx = h / 2 + h / 4 * np.sin(k / 30), w / 2 + w / 4 * np.cos(k / 30)
        spot = 1000 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * (h / 20) ** 2))
        out.append((spot + base).astype(np.uint16))
    return out


def measure() -> dict[str, float]:
    """This tree's figures: us of CPU per frame written (and the file sealed)."""
    figures = {}
    with tempfile.TemporaryDirectory(dir="/dev/shm") as tmp:
        for name, (shape, compression, count) in CASES.items():
            frames = demo_frames(shape)
            spec = StreamSpec("camera", shape, np.uint16, compression=compression)
            path = Path(tmp) / f"{name.replace(' ', '_')}.h5"
            start = time.process_time()
            with RunWriter(path, [spec], run_id="bench") as writer:
                for k in range(count):
                    writer.write("camera", frames[k % len(frames)], k, k)
            figures[name] = (time.process_time() - start) / count * 1e6
            path.unlink()
    return figures


if __name__ == "__main__":
    ab_main(__doc__ or "", __file__, measure, 26, 1)
