"""DeltaFOverF: ΔF/F against a running baseline, per pixel or per ROI.

ΔF/F = (F - F0) / F0, where F0 is a baseline that follows slow drifts
(bleaching, focus) but not the transients. Two baselines, both over a window
in seconds of the stream's own time (the frames' acquisition stamps, so no
frame rate has to be given and a paused or uneven stream is handled):

- ``percentile`` (the default; CaImAn's ``detrend_df_f`` uses the 8th
  percentile): frames are averaged in bins of ``bin_s`` seconds, the last
  ``window_s / bin_s`` bins are kept, and F0 is the ``percentile`` of those
  bins, recomputed when a bin closes. Until the first bin closes, F0 is the
  mean of the frames so far.
- ``exponential``: F0 follows F with time constant ``window_s``
  (``F0 += (1 - exp(-dt / window_s)) * (F - F0)``); cheaper, but it rises
  under long transients.

Input: any shape (frames, or records of ROI traces); output float32
(float64 for float64 input), same shape. F0 is held at ``min_baseline`` or
above, so dark pixels give bounded values instead of infinities.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rigd.pipeline._processor import Emission, FrameProcessor, Spec

__all__ = ["DeltaFOverF"]

_BASELINES = ("percentile", "exponential")
_MAX_BINS = 1024


class DeltaFOverF(FrameProcessor):
    """ΔF/F of each frame (or record) against a running baseline.

    Reads ``frames``; writes ``dff`` (same shape; float32, or float64 for
    float64 input).

    Args:
        window_s: the baseline's window (or time constant), in seconds.
        baseline: ``percentile`` or ``exponential`` (module documentation).
        percentile: which percentile of the window is F0 (``percentile`` only).
        bin_s: the bin the window is kept in, in seconds (``percentile``
            only); ``window_s / bin_s`` bins, at most 1024.
        min_baseline: F0 is held at this value or above (the input's units).

    Raises:
        ValueError: an option out of range (at load, with the pipeline file's line).
    """

    output_names = ("dff",)

    def __init__(
        self,
        window_s: float = 30.0,
        baseline: str = "percentile",
        percentile: float = 8.0,
        bin_s: float = 1.0,
        min_baseline: float = 1.0,
    ) -> None:
        self._check(window_s, baseline, percentile, bin_s, min_baseline)
        self.window_s = float(window_s)
        self.baseline = baseline
        self.percentile = float(percentile)
        self.bin_s = float(bin_s)
        self.min_baseline = float(min_baseline)

    @staticmethod
    def _check(
        window_s: Any, baseline: Any, percentile: Any, bin_s: Any, min_baseline: Any
    ) -> None:
        if not isinstance(window_s, (int, float)) or not window_s > 0:
            raise ValueError(f"window_s must be a positive number of seconds, got {window_s!r}")
        if baseline not in _BASELINES:
            raise ValueError(f"baseline must be one of {list(_BASELINES)}, got {baseline!r}")
        if not isinstance(percentile, (int, float)) or not 0 <= percentile <= 100:
            raise ValueError(f"percentile must be from 0 to 100, got {percentile!r}")
        if not isinstance(bin_s, (int, float)) or not bin_s > 0:
            raise ValueError(f"bin_s must be a positive number of seconds, got {bin_s!r}")
        if baseline == "percentile" and window_s / bin_s > _MAX_BINS:
            raise ValueError(
                f"window_s / bin_s is {window_s / bin_s:.0f} bins, more than {_MAX_BINS}; "
                f"make bin_s at least {window_s / _MAX_BINS:g} s"
            )
        if not isinstance(min_baseline, (int, float)) or not min_baseline > 0:
            raise ValueError(f"min_baseline must be positive, got {min_baseline!r}")

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Spec]
    ) -> dict[str, Spec]:
        if "frames" not in inputs:
            raise ValueError("DeltaFOverF needs its input 'frames' linked")
        cls(**options)  # every option checked at load, with the file's line
        shape, dtype = inputs["frames"]
        out = "<f8" if np.dtype(dtype) == np.float64 else "<f4"
        return {"dff": (tuple(shape), out)}

    def prepare(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        xp = self.xp
        self._dtype = xp.float64 if dtype == np.float64 else xp.float32
        self._f0: Any = None
        self._last_ns: int | None = None
        if self.baseline == "percentile":
            bins = max(1, math.ceil(self.window_s / self.bin_s))
            self._bins = xp.empty((bins, *shape), self._dtype)
            self._bins_filled = 0
            self._bin_next = 0
            self._bin_sum = xp.zeros(shape, xp.float64 if self._dtype == xp.float64 else xp.float32)
            self._bin_count = 0
            self._bin_start: int | None = None

    def process(self, data: Any, frame_id: int, timestamp_ns: int) -> list[Emission]:
        xp = self.xp
        f = xp.asarray(data, dtype=self._dtype)
        if self.baseline == "exponential":
            if self._f0 is None:
                self._f0 = f.copy()
            else:
                dt = max(0.0, (timestamp_ns - (self._last_ns or timestamp_ns)) / 1e9)
                alpha = 1.0 - math.exp(-dt / self.window_s)
                self._f0 += self._dtype(alpha) * (f - self._f0)
        else:
            self._add_to_bin(f, timestamp_ns)
        self._last_ns = timestamp_ns
        f0 = xp.maximum(self._f0, self._dtype(self.min_baseline))
        return [Emission(frame_id, timestamp_ns, {"dff": (f - f0) / f0})]

    def _add_to_bin(self, f: Any, timestamp_ns: int) -> None:
        xp = self.xp
        if self._bin_start is None:
            self._bin_start = timestamp_ns
        self._bin_sum += f
        self._bin_count += 1
        if timestamp_ns - self._bin_start >= self.bin_s * 1e9:
            # The bin closes: into the window, and the baseline is recomputed.
            self._bins[self._bin_next] = self._bin_sum / self._bin_count
            self._bin_next = (self._bin_next + 1) % len(self._bins)
            self._bins_filled = min(self._bins_filled + 1, len(self._bins))
            self._bin_sum[...] = 0
            self._bin_count = 0
            self._bin_start = None
            window = self._bins[: self._bins_filled]
            self._f0 = xp.percentile(window, self.percentile, axis=0).astype(self._dtype)
        elif self._bins_filled == 0:
            self._f0 = (self._bin_sum / self._bin_count).astype(self._dtype)
