"""Actors for the run-control tests (logs, pauses, failures)."""

from __future__ import annotations

from rigd import Actor


class Chatty(Actor):
    """Reads frames and says so through its own logger (``self.log``)."""

    input_names = ("frames",)

    def setup(self) -> None:
        self.seen = 0
        self.log.info("set up, %s", "ready")

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=0.5) as frame:
            self.seen += 1
            if self.seen % 10 == 0:
                self.log.info("frame %d", frame.frame_id)
