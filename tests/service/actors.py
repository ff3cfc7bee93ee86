"""Actor classes the service tests load into a real daemon (allowed_modules: tests.service)."""

from __future__ import annotations

import time
from typing import Any

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


class LossyCamera(Actor):
    """A camera at ``fps`` whose driver cannot fill every ``drop_every``-th buffer:
    those frames are dropped with the reason ``incomplete`` (a drop note), as
    a GenICam camera's incomplete buffers are; it keeps its rate."""

    output_names = ("frames",)

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"frames": ((8, 8), "|u1")}

    def __init__(self, fps: float = 100.0, n_frames: int = 300, drop_every: int = 4) -> None:
        self.fps = fps
        self.n_frames = n_frames
        self.drop_every = drop_every
        self.k = 0
        self.t0 = 0.0

    def setup(self) -> None:
        self.t0 = time.monotonic()

    def run_step(self) -> None:
        if self.k >= self.n_frames:
            self.finish()
            return
        # Paced as a camera delivers: frame k at k / fps.
        delay = self.t0 + self.k / self.fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        writer = self.outputs.frames
        if self.k % self.drop_every == 0:
            writer.note_dropped(self.k, 1, "incomplete")
        else:
            with writer.slot(frame_id=self.k) as view:
                view[:] = self.k % 256
        self.k += 1
