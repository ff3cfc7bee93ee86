"""A message's CPU cost on each side: MessagePack's path against pickle's, in one run.

The object is ``bench/messages.py``'s 1 KB message, ``{"t", "k", "data":
ndarray}`` (and the same with a 1 MB array). Packing is what
``MessageWriter.put`` does before it commits (``dumps`` then ``pack_into``
a slot); reading is what ``Message.value`` does (``loads_from`` the slot,
the array a view of it). The peer, pickle's path, is the same object as a
``dict`` subclass, which the MessagePack path leaves to pickle (protocol 5,
buffers out of band: what every message went through before).

Figures: us per message, warm (back to back) and cold (one every 5 ms, as a
200/s stream sees it: caches and branch predictors lose the code between
messages), p50; ratios pickle / MessagePack.

    .venv/bin/python bench/message_codec.py
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rigd.storage._msgpack import Encoder
from rigd.storage._oob import _MAGIC, _MAGIC_PLAIN, dumps, loads_from, pack_into


class Pickled(dict[str, Any]):
    """A dict the MessagePack path does not take: pickle's path, for comparison."""


def warm_us(fn: Callable[[], object], n: int) -> float:
    for _ in range(n // 10):
        fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - start) / n / 1e3)
    return best


def cold_us(fn: Callable[[], object], n: int, gap_s: float = 0.005) -> float:
    times = []
    for _ in range(n):
        time.sleep(gap_s)
        start = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - start) / 1e3)
    return float(np.percentile(times, 50))


def measure(size: int, kind: type, magic: int, warm_n: int, cold_n: int) -> dict[str, Any]:
    """Put and get of one message of ``size`` array bytes, sent as ``kind``."""
    data = np.zeros(size, np.uint8)
    slot = np.zeros(size + 4096, np.uint8)
    area = memoryview(slot).cast("B")
    view = slot.view()
    view.flags.writeable = False
    encoder = Encoder()

    def put() -> int:
        obj = kind(t=time.monotonic_ns(), k=5, data=data)
        return pack_into(dumps(obj, encoder), area)

    def get() -> object:
        value = loads_from(view)
        return value["data"][-1]

    put()
    assert int.from_bytes(area[:4], "little") == magic
    return {
        "put": (warm_us(put, warm_n), cold_us(put, cold_n)),
        "get": (warm_us(get, warm_n), cold_us(get, cold_n)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--warm-n", type=int, default=20_000)
    parser.add_argument("--cold-n", type=int, default=400)
    args = parser.parse_args()

    print(
        "| size | side | MessagePack warm / cold us | pickle warm / cold us | ratio warm / cold |"
    )
    print("|---|---|---|---|---|")
    for size in (1000, 1_000_000):
        warm_n = args.warm_n if size < 1_000_000 else args.warm_n // 100
        mine = measure(size, dict, _MAGIC_PLAIN, warm_n, args.cold_n)
        theirs = measure(size, Pickled, _MAGIC, warm_n, args.cold_n)
        label = "1 KB" if size < 1_000_000 else "1 MB"
        for side in ("put", "get"):
            (mw, mc), (tw, tc) = mine[side], theirs[side]
            print(
                f"| {label} | {side} | {mw:.1f} / {mc:.1f} | {tw:.1f} / {tc:.1f} | "
                f"**{tw / mw:.1f}x** / **{tc / mc:.1f}x** |"
            )


if __name__ == "__main__":
    main()
