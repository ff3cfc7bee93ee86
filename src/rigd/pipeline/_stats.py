"""FrameStats: per-frame mean, min and max, on the GPU when the actor has one."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rigd.actors import Actor, get_gpu_ids
from rigd.gpu import array_module
from rigd.storage import RecordField

__all__ = ["FrameStats"]


class FrameStats(Actor):
    """Reads ``frames``; writes ``stats``: ``[mean, min, max]`` (float64) per frame.

    The stats keep the frame's id and acquisition time, so a recorder linked
    to ``stats`` stores them as a dataset beside the frames.
    """

    input_names = ("frames",)
    output_names = ("stats",)

    def __init__(self) -> None:
        self.frames_done = 0
        self.backend = "numpy"

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        return {"stats": ((3,), np.dtype(np.float64).str)}

    @classmethod
    def describe_fields(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[RecordField, ...]]:
        """What the columns of ``stats`` mean (a recorder names its datasets so)."""
        return {
            "stats": (
                RecordField("mean", "counts", "frame mean"),
                RecordField("min", "counts", "frame minimum"),
                RecordField("max", "counts", "frame maximum"),
            )
        }

    def setup(self) -> None:
        self._xp = array_module(bool(get_gpu_ids()))
        self.backend = self._xp.__name__
        self._row = np.empty(3, np.float64)

    def run_step(self) -> None:
        frames = self.inputs.frames
        with frames.read(timeout=1.0) as frame:
            data = self._xp.asarray(frame.array)
            row = self._row
            row[0] = float(data.mean())
            row[1] = float(data.min())
            row[2] = float(data.max())
            frame_id, timestamp_ns = frame.frame_id, frame.timestamp_ns
        self.outputs.stats.put(row, frame_id=frame_id, timestamp_ns=timestamp_ns)
        self.frames_done += 1

    def status(self) -> dict[str, Any]:
        return {"frames": self.frames_done, "backend": self.backend}
