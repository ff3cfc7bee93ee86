"""Actors for the ``rigd run`` stop tests, importable by path (``tests.service.run_actors.X``)."""

from __future__ import annotations

import threading

from rigd import Actor


class Hanger(Actor):
    """A reader whose ``run_step`` never returns after its first frame (a driver
    call that hangs): a clean stop cannot drain it."""

    input_names = ("frames",)

    def __init__(self) -> None:
        self._never = threading.Event()

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0):
            pass
        self._never.wait()  # hung for good: only a forced stop ends this actor
