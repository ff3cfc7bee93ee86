#!/usr/bin/env python3
"""The ring's frame path in CPU time: what a refactor of the ring must keep.

``bench/ring.py`` measures the ring between processes, in wall time; on a
busy machine its figures move with the load. This measures the code of the
frame path itself, in one process and in the process's CPU time, which
holds on a busy machine: a writer's ``put`` (and its ``slot()``) and a
reader's ``get`` + ``release``, per frame, for a lossless and a latest
reader, on 64x64 uint16 frames (the copy is small, so the ring's own code
dominates). The peer is another tree of rigd (``--against SRC``, the
``src`` folder of, say, a checkout of main): the two run alternately, in
child processes, 3 times each, and the ratios are this tree's CPU per frame
over the other's (best of 7 rounds of 20,000 frames per run).

    .venv/bin/python bench/ring_cpu.py --against /path/to/main/src
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

import numpy as np
from cpu_ab import ab_main

from rigd.storage import FrameRing

FRAMES = 20_000
ROUNDS = 7


def best_us(step: Callable[[], None]) -> float:
    """The best of ROUNDS rounds of FRAMES calls of ``step``: us of CPU per call."""
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        for _ in range(FRAMES):
            step()
        best = min(best, time.process_time() - start)
    return best / FRAMES * 1e6


def measure() -> dict[str, float]:
    """This tree's figures, us of CPU per frame."""
    frame = np.ones((64, 64), np.uint16)
    figures = {}
    for policy in ("lossless", "latest"):
        with FrameRing.create(f"cpu-{os.getpid()}-{policy}", frame.shape, frame.dtype) as ring:
            writer = ring.writer()
            reader = ring.reader(policy)

            def put_step(writer=writer, reader=reader) -> None:
                writer.put(frame)
                reader.release(reader.get(timeout=1))

            def slot_step(writer=writer, reader=reader) -> None:
                with writer.slot() as view:
                    view[0, 0] = 1
                reader.release(reader.get(timeout=1))

            figures[f"put + get + release, {policy}"] = best_us(put_step)
            figures[f"slot() + get + release, {policy}"] = best_us(slot_step)
            writer.close()
            reader.close()
    return figures


if __name__ == "__main__":
    ab_main(__doc__ or "", __file__, measure, 36, 2)
