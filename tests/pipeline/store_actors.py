"""Actors that fill a run's store, for the tests of its end."""

from __future__ import annotations

import rigd
from rigd import Actor


class KeyPerStep(Actor):
    """Puts one store entry per step under a key of its own (``frame_00000``,
    ...), as an improv-style actor puts each frame's data, ``n`` steps."""

    def __init__(self, n: int = 100) -> None:
        self.n = n
        self.k = 0

    def run_step(self) -> None:
        if self.k >= self.n:
            self.finish()
            return
        rigd.store.put(f"frame_{self.k:05d}", self.k)
        self.k += 1
