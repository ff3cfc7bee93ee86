"""Actor classes the service tests load into a real daemon (allowed_modules: tests.service)."""

from __future__ import annotations

from rigd.actors import Actor


class Sink(Actor):
    """Reads frames and keeps nothing; ``log_file`` names a place it does not declare."""

    input_names = ("frames",)

    def __init__(self, log_file: str = "", tag: str = "") -> None:
        self.log_file = log_file
        self.tag = tag

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0):
            pass
