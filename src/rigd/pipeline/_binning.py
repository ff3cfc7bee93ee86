"""Bin: spatial binning (downsampling) by integer factors, and temporal averaging.

Spatial: each output pixel is the mean (or sum) of a ``factor_y`` x
``factor_x`` block, as a camera's on-chip binning or
``skimage.transform.downscale_local_mean``; rows and columns left over at the
bottom and right edges (when the size is not a multiple) are dropped.

Temporal: output frame j is the mean (or sum) of the input frames whose ids
are ``j * frames`` to ``(j + 1) * frames - 1``, so output ids stay
consecutive and a frame dropped upstream shrinks its bin instead of shifting
every bin after it. An output frame carries the acquisition time of the
last frame in its bin (when it could first exist).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rigd.pipeline._processor import Emission, FrameProcessor, Spec

__all__ = ["Bin"]

_MODES = ("mean", "sum")


def _factors(factor: Any) -> tuple[int, int]:
    if isinstance(factor, int) and not isinstance(factor, bool):
        factor = [factor, factor]
    if (
        not isinstance(factor, (list, tuple))
        or len(factor) != 2
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in factor)
    ):
        raise ValueError(
            "factor must be a whole number >= 1 or [rows, columns], e.g. 2 or [2, 4]; "
            f"got {factor!r}"
        )
    return int(factor[0]), int(factor[1])


class Bin(FrameProcessor):
    """Spatial binning by ``factor`` and temporal averaging over ``frames``.

    Reads ``frames`` (at least 2-D: the last two axes are binned); writes
    ``frames`` with the last two axes divided by the factors (rounded down),
    float32 for ``mean`` and float64 for ``sum``.

    Args:
        factor: the block, ``2`` or ``[rows, columns]``.
        frames: input frames per output frame (1: spatial binning only).
        mode: ``mean`` or ``sum``.

    Raises:
        ValueError: a factor larger than the frame, or an option out of range.
    """

    output_names = ("frames",)

    def __init__(self, factor: Any = 2, frames: int = 1, mode: str = "mean") -> None:
        self.factor = _factors(factor)
        if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
            raise ValueError(f"frames must be a whole number >= 1, got {frames!r}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {list(_MODES)}, got {mode!r}")
        self.frames = frames
        self.mode = mode

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Spec]
    ) -> dict[str, Spec]:
        shape, _ = cls.frame_shape(inputs, "Bin")
        cls(**options)  # every option checked at load, with the file's line
        fy, fx = _factors(options.get("factor", 2))
        if fy > shape[-2] or fx > shape[-1]:
            raise ValueError(
                f"factor [{fy}, {fx}] is larger than the frames ({shape[-2]} x {shape[-1]}); "
                "give a smaller factor"
            )
        out = (*shape[:-2], shape[-2] // fy, shape[-1] // fx)
        dtype = "<f8" if options.get("mode", "mean") == "sum" else "<f4"
        return {"frames": (tuple(out), dtype)}

    def prepare(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        xp = self.xp
        fy, fx = self.factor
        self._out_shape = (*shape[:-2], shape[-2] // fy, shape[-1] // fx)
        self._dtype = xp.float64 if self.mode == "sum" else xp.float32
        self._sum = xp.zeros(self._out_shape, self._dtype)
        self._count = 0
        self._bin: int | None = None
        self._stamp = 0

    def spatial(self, data: Any) -> Any:
        """One frame binned in space (``self._dtype``), summed over each block."""
        xp = self.xp
        fy, fx = self.factor
        h, w = self._out_shape[-2], self._out_shape[-1]
        lead = self._out_shape[:-2]
        block = xp.asarray(data[..., : h * fy, : w * fx], dtype=self._dtype)
        return block.reshape(*lead, h, fy, w, fx).sum(axis=(-3, -1))

    def process(self, data: Any, frame_id: int, timestamp_ns: int) -> list[Emission]:
        binned = self.spatial(data)
        if self.frames == 1:
            return [Emission(frame_id, timestamp_ns, {"frames": self._finish(binned, 1)})]
        index = frame_id // self.frames
        out: list[Emission] = []
        if self._bin is not None and index != self._bin:
            out.append(self._close())
        self._bin = index
        self._sum += binned
        self._count += 1
        self._stamp = timestamp_ns
        if self._count == self.frames:
            out.append(self._close())
        return out

    def flush(self) -> list[Emission]:
        return [self._close()] if self._count else []

    def _close(self) -> Emission:
        assert self._bin is not None
        frame = self._finish(self._sum, self._count)
        emission = Emission(self._bin, self._stamp, {"frames": frame})
        self._sum = self.xp.zeros(self._out_shape, self._dtype)
        self._count = 0
        self._bin = None
        return emission

    def _finish(self, summed: Any, frames: int) -> Any:
        if self.mode == "sum":
            return summed
        fy, fx = self.factor
        return summed * self._dtype(1.0 / (fy * fx * frames))
