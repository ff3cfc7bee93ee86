"""The actor demo ``rigd demo`` runs: Ray's actor guide, with ``import rigd``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from rigd import actors
from rigd.actors import ActorClass, ActorHandle

__all__ = ["run_demo"]


class Counter:
    """The guide's counter."""

    def __init__(self) -> None:
        self.value = 0

    @actors.method
    def increment(self) -> int:
        self.value += 1
        return self.value

    @actors.method
    def get_counter(self) -> int:
        return self.value


class FrameMean:
    """Reduces a frame to its mean, to show large arrays crossing processes."""

    @actors.method
    def mean(self, frame: np.ndarray[Any, Any]) -> float:
        return float(frame.mean())


# rigd.remote(Class) rather than @rigd.remote, as Ray's typing guide advises:
# type checkers then know the actor class and its handles.
CounterActor: ActorClass[Counter] = actors.remote(Counter)
FrameMeanActor: ActorClass[FrameMean] = actors.remote(FrameMean)


@actors.remote
def bump(counter: ActorHandle[Counter], times: int) -> int:
    """A task that drives an actor through a handle it was passed."""
    values: list[int] = actors.get([counter.increment.remote() for _ in range(times)])
    return values[-1]


def run_demo(say: Callable[[str], None] = print) -> dict[str, float]:
    """Run the demo and return its figures; ``say`` prints each step."""
    t0 = time.perf_counter()
    actors.init()
    figures = {"init_s": time.perf_counter() - t0}
    try:
        counters = [CounterActor.remote() for _ in range(4)]
        say(f"4 actors in parallel: {actors.get([c.increment.remote() for c in counters])}")
        in_order = actors.get([counters[0].increment.remote() for _ in range(5)])
        say(f"one actor, in order: {in_order}")

        named = CounterActor.options(name="demo-counter").remote()
        actors.get(named.increment.remote())
        again = actors.get_actor("demo-counter")
        say(f"named actor looked up: value {actors.get(again.get_counter.remote())}")

        total = actors.get([bump.remote(named, 10) for _ in range(2)])
        say(f"two tasks drove it through its handle: last values {total}")

        n = 2000
        t = time.perf_counter()
        for _ in range(n):
            actors.get(counters[1].get_counter.remote())
        figures["sync_call_us"] = (time.perf_counter() - t) / n * 1e6
        say(f"sync call round trip: {figures['sync_call_us']:.0f} us")

        frame = np.random.default_rng(0).integers(0, 4096, (2048, 2048), dtype=np.uint16)
        fm = FrameMeanActor.remote()
        actors.get(fm.mean.remote(frame))
        t = time.perf_counter()
        for _ in range(50):
            actors.get(fm.mean.remote(frame))
        figures["frame_8mb_ms"] = (time.perf_counter() - t) / 50 * 1e3
        say(f"8 MB frame to an actor and back (mean): {figures['frame_8mb_ms']:.1f} ms")
    finally:
        actors.shutdown()
    say("shut down: no processes, sockets or shared memory left")
    return figures
