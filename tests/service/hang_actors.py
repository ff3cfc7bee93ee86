"""An actor whose ``setup`` never returns, as a user's actor stuck on its hardware."""

from __future__ import annotations

import threading

from rigd.actors import Actor


class HangInSetup(Actor):
    """Reads frames, but its ``setup`` blocks for ever (a device that never answers)."""

    input_names = ("frames",)

    def setup(self) -> None:
        threading.Event().wait()

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0):
            pass
