"""FrameTrigger: decides, per frame, whether to trigger, from the frame's statistics.

The decision half of triggered capture (``rigd.pipeline._trigger`` has the
recording half): an expression over the frame's statistics (``mean``,
``min``, ``max``, ``std``, ``sum``, optionally in an ROI), evaluated on the
GPU on the frame already uploaded when the actor has one (only the decision
comes back), with numpy otherwise. It writes one record per trigger (an
events stream) that a ``TriggeredRecorder`` reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rigd.pipeline._expression import Expression, History
from rigd.pipeline._processor import Emission, FrameProcessor, Spec

__all__ = ["FRAME_STATS", "FrameTrigger"]

#: The statistics a FrameTrigger computes, in the order of its records.
FRAME_STATS = ("mean", "min", "max", "std", "sum")


class FrameTrigger(FrameProcessor):
    """Decides per frame whether to trigger: ``when`` over the frame's statistics.

    Reads ``frames``; writes ``events``: one record per trigger, ``[mean, min,
    max, std, sum]`` (float64) of the triggering frame, with its frame id
    and acquisition time.

    Args:
        when: the condition, over ``mean``, ``min``, ``max``, ``std``, ``sum``
            (see ``rigd.pipeline._expression``), e.g.
            ``"max > 1.5 * mean_of_last(max, 50)"``.
        roi: ``[y, x, height, width]``: the statistics of that region only.
        edge: trigger when the condition becomes true (``true``, the default),
            or on every frame where it holds (``false``).

    On a GPU actor (``num_gpus``) the statistics and the condition are
    computed on the GPU from the uploaded frame; only the decision (one
    boolean) comes back to the host. Without one, numpy does the same.

    Raises:
        ValueError: a bad expression (with its column) or ROI, at load.
    """

    output_names = ("events",)

    def __init__(self, when: str, roi: list[int] | None = None, edge: bool = True) -> None:
        self.condition = Expression(when, FRAME_STATS)
        if roi is not None and (
            not isinstance(roi, (list, tuple))
            or len(roi) != 4
            or not all(isinstance(v, int) and v >= 0 for v in roi)
            or roi[2] < 1
            or roi[3] < 1
        ):
            raise ValueError(f"roi is [y, x, height, width] in pixels, got {roi!r}")
        self.roi = tuple(roi) if roi is not None else None
        self.edge = bool(edge)
        self.triggers = 0

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Spec]
    ) -> dict[str, Spec]:
        shape, _ = cls.frame_shape(inputs, "FrameTrigger")
        cls(**options)  # the expression checked at load, with the file's line
        roi = options.get("roi")
        if roi is not None and (roi[0] + roi[2] > shape[-2] or roi[1] + roi[3] > shape[-1]):
            raise ValueError(f"roi {list(roi)} is not inside the {shape[-2]} x {shape[-1]} frame")
        return {"events": ((len(FRAME_STATS),), "<f8")}

    def prepare(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self._history = History(self.xp, self.condition.history)
        self._was_true = False

    def statistics_of(self, data: Any) -> dict[str, Any]:
        """The frame's (or ROI's) statistics as 0-d ``xp`` float64 arrays."""
        xp = self.xp
        if self.roi is not None:
            y, x, h, w = self.roi
            data = data[..., y : y + h, x : x + w]
        f = data.astype(xp.float64)
        return {
            "mean": f.mean(),
            "min": f.min(),
            "max": f.max(),
            "std": f.std(),
            "sum": f.sum(),
        }

    def process(self, data: Any, frame_id: int, timestamp_ns: int) -> list[Emission]:
        xp = self.xp
        values = self.statistics_of(data)
        holds = self.condition.holds(xp, values, self._history.past())
        self._history.push(values)
        fire = holds and not (self.edge and self._was_true)
        self._was_true = holds
        if not fire:
            return []
        self.triggers += 1
        record = xp.stack(
            [xp.asarray(values.get(name, xp.nan), xp.float64) for name in FRAME_STATS]
        )
        return [Emission(frame_id, timestamp_ns, {"events": record})]

    def status(self) -> dict[str, Any]:
        """Frames in, triggers so far, the backend."""
        return {**super().status(), "triggers": self.triggers}
