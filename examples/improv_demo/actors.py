"""The example's own actor: a processor, as an improv demo would have.

``SpotTracker`` finds the bright spot in each frame (the brightest pixel,
refined by the intensity-weighted centre of its neighbourhood) and writes
its position, ``[y, x]``, for each frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import rigd


class SpotTracker(rigd.Actor):
    input_names = ("frames",)
    output_names = ("position",)

    def __init__(self, window: int = 7) -> None:
        self.window = window
        self.tracked = 0
        self.last: list[float] = []

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"position": ((2,), "<f8")}

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0) as frame:
            image = frame.array
            y, x = np.unravel_index(int(np.argmax(image)), image.shape)
            w = self.window
            y0, x0 = max(0, y - w), max(0, x - w)
            patch = image[y0 : y + w + 1, x0 : x + w + 1].astype(np.float64)
            total = patch.sum() or 1.0
            yy, xx = np.mgrid[: patch.shape[0], : patch.shape[1]]
            position = np.array([y0 + (yy * patch).sum() / total, x0 + (xx * patch).sum() / total])
            frame_id, stamp = frame.frame_id, frame.timestamp_ns
        self.outputs.position.put(position, frame_id=frame_id, timestamp_ns=stamp)
        self.tracked += 1
        self.last = position.tolist()

    def where(self) -> dict[str, Any]:
        """The last position found (callable through the handle while it runs)."""
        return {"tracked": self.tracked, "position": self.last}
