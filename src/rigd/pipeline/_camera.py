"""SimulatedCamera: a source of frames for demos, tests and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from rigd.actors import Actor

__all__ = ["SimulatedCamera"]

_PATTERNS = ("counter", "noise", "spot")
_NOISE_BANK = 8


class SimulatedCamera(Actor):
    """Frames of one shape and dtype, written in place into the ``frames`` ring.

    Args:
        shape: frame shape, e.g. ``[512, 512]``.
        dtype: e.g. ``uint16``.
        fps: frames per second; ``None`` or 0 for as fast as the readers take them.
        n_frames: frames to produce, then end (``None``: until stopped).
        pattern: ``counter`` (frame k filled with k modulo the dtype's range),
            ``noise`` (random frames), or ``spot`` (a gaussian spot moving on a
            circle over a dim background).
        seed: the random generator's seed (``noise``, ``spot``).

    Frame ids count from 0; each frame is stamped with its acquisition time
    (``time.time_ns()``, as the HDF5 files store it).
    """

    output_names = ("frames",)

    def __init__(
        self,
        shape: list[int] | tuple[int, ...] = (512, 512),
        dtype: str = "uint16",
        fps: float | None = None,
        n_frames: int | None = None,
        pattern: str = "counter",
        seed: int = 0,
    ) -> None:
        self.shape, self.dtype = self._check(shape, dtype, pattern, fps, n_frames)
        self.fps = fps or None
        self.n_frames = n_frames
        self.pattern = pattern
        self.seed = seed
        self.frames_written = 0

    @staticmethod
    def _check(
        shape: Any, dtype: Any, pattern: str, fps: float | None, n_frames: int | None
    ) -> tuple[tuple[int, ...], np.dtype[Any]]:
        try:
            shape = tuple(int(n) for n in shape)
        except (TypeError, ValueError):
            raise ValueError(
                f"shape must be a list of sizes, e.g. [512, 512], got {shape!r}"
            ) from None
        if not shape or any(n <= 0 for n in shape):
            raise ValueError(f"shape must be positive sizes, got {list(shape)}")
        try:
            dt = np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype {dtype!r} is not a numpy dtype (e.g. uint16)") from None
        if pattern not in _PATTERNS:
            raise ValueError(f"pattern must be one of {list(_PATTERNS)}, got {pattern!r}")
        if fps is not None and fps < 0:
            raise ValueError(f"fps must be positive (or null for as fast as possible), got {fps}")
        if n_frames is not None and n_frames < 0:
            raise ValueError(f"n_frames must be >= 0 (or null for unlimited), got {n_frames}")
        return shape, dt

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        shape, dtype = cls._check(
            options.get("shape", (512, 512)),
            options.get("dtype", "uint16"),
            options.get("pattern", "counter"),
            options.get("fps"),
            options.get("n_frames"),
        )
        return {"frames": (shape, dtype.str)}

    def setup(self) -> None:
        rng = np.random.default_rng(self.seed)
        self._info_max = int(np.iinfo(self.dtype).max) if self.dtype.kind in "iu" else None
        if self.pattern == "noise":
            high = min(self._info_max or 4096, 4096) + 1
            self._bank = [
                rng.integers(0, high, self.shape).astype(self.dtype) for _ in range(_NOISE_BANK)
            ]
        elif self.pattern == "spot":
            h, w = self.shape[-2], self.shape[-1]
            self._y = np.arange(h, dtype=np.float32)
            self._x = np.arange(w, dtype=np.float32)
            self._sigma = max(2.0, min(h, w) / 20)
            self._amp = float(min(self._info_max or 1000, 1000))
            self._buf = np.empty((h, w), np.float32)
            base = rng.normal(100, 5, (h, w)).clip(0)
            self._base = base.astype(np.float32)
        self._t0 = time.monotonic()
        self._first = self.frames_written

    def run_step(self) -> None:
        k = self.frames_written
        if self.n_frames is not None and k >= self.n_frames:
            self.finish()
            return
        if self.fps:
            due = self._t0 + (k - self._first) / self.fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        with self.outputs.frames.slot(frame_id=k, timestamp_ns=time.time_ns()) as view:
            self._fill(view, k)
        self.frames_written = k + 1

    def _fill(self, view: np.ndarray[Any, Any], k: int) -> None:
        if self.pattern == "counter":
            view.fill(k % (self._info_max + 1) if self._info_max is not None else k)
        elif self.pattern == "noise":
            view[...] = self._bank[k % _NOISE_BANK]
        else:
            h, w = self.shape[-2], self.shape[-1]
            angle = 2 * np.pi * (k % 200) / 200
            cy = h / 2 + h / 4 * np.sin(angle)
            cx = w / 2 + w / 4 * np.cos(angle)
            gy = np.exp(-((self._y - cy) ** 2) / (2 * self._sigma**2)) * self._amp
            gx = np.exp(-((self._x - cx) ** 2) / (2 * self._sigma**2))
            np.multiply.outer(gy, gx, out=self._buf)
            self._buf += self._base
            np.copyto(view.reshape(h, w) if view.ndim == 2 else view, self._buf, casting="unsafe")

    def status(self) -> dict[str, Any]:
        """Frames written so far (callable through the handle while it runs)."""
        return {"frames_written": self.frames_written, "fps": self.fps}
