"""SimulatedCamera: a source of frames for demos, tests and benchmarks."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from rigd.actors import Actor
from rigd.pipeline._frame_spec import frame_spec

__all__ = ["SimulatedCamera"]

_PATTERNS = ("counter", "noise", "spot", "cells")
_OVERFLOW = ("drop", "block")
_NOISE_BANK = 8


def _check_overflow(overflow: Any) -> None:
    if overflow is not None and overflow not in _OVERFLOW:
        raise ValueError(
            f"overflow must be 'drop' (a camera: never held back, drops when its ring is "
            f"full) or 'block' (a generator: waits for its readers), got {overflow!r}"
        )


def _check_numbers(n_frames: Any, motion: Any, seed: Any) -> None:
    """Refuse what the constructor or the first step would fail on (at planning too)."""
    if n_frames is not None and (
        isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 0
    ):
        raise ValueError(
            f"n_frames must be a whole number >= 0 (or null for unlimited), got {n_frames!r}"
        )
    if isinstance(motion, bool) or not isinstance(motion, (int, float)) or not motion >= 0:
        raise ValueError(f"motion must be a number of pixels >= 0, got {motion!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(
            f"seed must be a whole number >= 0 (numpy.random.default_rng's), got {seed!r}"
        )


class SimulatedCamera(Actor):
    """Frames of one shape and dtype, written in place into the ``frames`` ring.

    Args:
        shape: frame shape, e.g. ``[512, 512]``.
        dtype: e.g. ``uint16``.
        fps: frames per second; ``None`` or 0 for as fast as the readers take them.
        n_frames: frames to deliver, then end (``None``: until stopped): the
            frames written to ``frames``, which a recorder puts in the run
            file. Frames dropped on a full ring (``overflow: drop``) do not
            count: they are counted apart (``frames_dropped``, the ledger) and
            the camera goes on until ``n_frames`` were delivered, so the last
            frame id is ``n_frames - 1`` plus the drops. As ``GenICamCamera``'s
            ``n_frames``; a restarted camera counts on from what it delivered.
        pattern: ``counter`` (frame k filled with k modulo the dtype's range),
            ``noise`` (random frames), or ``spot`` (a gaussian spot moving on a
            circle over a dim background), or ``cells`` (a calcium-imaging
            field: cell bodies whose fluorescence jumps at random spikes and
            decays with a 0.5 s time constant, on a dim background with
            shot noise, the whole field moving by up to ``motion`` pixels).
        seed: the random generator's seed (``noise``, ``spot``, ``cells``).
        motion: ``cells`` only: the rigid motion's amplitude, in pixels (the
            field moves by whole pixels on a slow random walk).
        overflow: what a frame does when its slot is still held by a lossless
            reader a whole ring behind. ``drop`` (the default with an
            ``fps``): the camera is never held back, as a real one is not;
            the frame is dropped, counted (``frames_dropped``, the ring's
            ``frames_skipped``) and its id is skipped, and the recorder puts
            it in the run file's drop ledger with reason ``ring_full``.
            ``block`` (the default without an ``fps``): a generator, not a
            camera: it waits for the slot, so no frame is lost and the rate
            is what the readers take.

    Frame ids count from 0; each frame is stamped with its acquisition time
    (``time.time_ns()``, as the HDF5 files store it). A dropped frame's id
    is not reused.
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
        motion: float = 0.0,
        overflow: str | None = None,
    ) -> None:
        _check_overflow(overflow)
        _check_numbers(n_frames, motion, seed)
        self.motion = float(motion)
        self.shape, self.dtype = self._check(shape, dtype, pattern, fps, n_frames)
        self.fps = fps or None
        self.n_frames = n_frames
        self.pattern = pattern
        self.seed = seed
        self.overflow = overflow or ("drop" if self.fps else "block")
        #: The next frame id (frames delivered and dropped, and ids skipped on a restart).
        self.frames_written = 0
        #: Frames written to the ring: what ``n_frames`` counts.
        self.frames_delivered = 0
        #: Frames dropped because the ring was full (``overflow: drop``).
        self.frames_dropped = 0
        #: The id the camera went on from after a restart (None: never restarted).
        self.restarted_at: int | None = None

    @staticmethod
    def _check(
        shape: Any, dtype: Any, pattern: str, fps: float | None, n_frames: int | None
    ) -> tuple[tuple[int, ...], np.dtype[Any]]:
        shape, dt = frame_spec(shape, dtype)
        if pattern not in _PATTERNS:
            raise ValueError(f"pattern must be one of {list(_PATTERNS)}, got {pattern!r}")
        if fps is not None and (
            isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps)
        ):
            hint = (
                " (YAML reads 1e9 and 1.0e9 as text: write 1.0e+9)" if isinstance(fps, str) else ""
            )
            raise ValueError(
                f"fps must be a number of frames per second (or null for as fast as "
                f"possible), got {fps!r}{hint}"
            )
        if fps is not None and fps < 0:
            raise ValueError(f"fps must be positive (or null for as fast as possible), got {fps}")
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
        _check_overflow(options.get("overflow"))
        _check_numbers(options.get("n_frames"), options.get("motion", 0.0), options.get("seed", 0))
        return {"frames": (shape, dtype.str)}

    def setup(self) -> None:
        previous = self.outputs.frames.previous if "frames" in self.outputs else None
        if previous is not None and self.frames_written == 0:
            # Restarted after a crash: go on after the last frame the ring
            # has, and skip the frames the camera would have taken while it
            # was down (at its rate), as a camera's own counter would. The
            # recorder puts the jump in its ledger.
            last_id, last_ns = previous
            down_s = max(0.0, (time.time_ns() - last_ns) / 1e9)
            missed = int(down_s * self.fps) if self.fps else 0
            self.frames_written = last_id + 1 + missed
            self.frames_delivered = self.outputs.frames.committed
            self.restarted_at = last_id + 1
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
        elif self.pattern == "cells":
            self._setup_cells(rng)
        # The clock starts with the run (the first step), not here: the other
        # actors' setups may take seconds (a model to load), and a clock started
        # now would make the camera write those seconds' frames at once.
        self._t0: float | None = None
        self._first = self.frames_written

    def resume(self) -> None:
        """Restart the pacing clock: the next frame is due now, then one per ``1/fps`` s.

        A paused camera takes no frames; it does not make up the paused time
        on resume (no burst of frames at once, no ``ring_full`` drops).
        """
        self._t0 = time.monotonic()
        self._first = self.frames_written

    def run_step(self) -> None:
        k = self.frames_written
        if self.n_frames is not None and self.frames_delivered >= self.n_frames:
            self.finish()
            return
        if self.fps:
            if self._t0 is None:
                self._t0, self._first = time.monotonic(), k
            due = self._t0 + (k - self._first) / self.fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        out = self.outputs.frames
        stamp = time.time_ns()
        if self.overflow == "block":
            with out.slot(frame_id=k, timestamp_ns=stamp) as view:
                self._fill(view, k)
            self.frames_delivered += 1
        else:
            try:
                with out.slot(frame_id=k, timestamp_ns=stamp, timeout=0) as view:
                    self._fill(view, k)
                self.frames_delivered += 1
            except TimeoutError:
                # A lossless reader still holds the slot: drop the frame, as a
                # camera whose buffers are all in use does.
                out.skip(k)
                self.frames_dropped += 1
        self.frames_written = k + 1

    def _fill(self, view: np.ndarray[Any, Any], k: int) -> None:
        if self.pattern == "counter":
            view.fill(k % (self._info_max + 1) if self._info_max is not None else k)
        elif self.pattern == "noise":
            view[...] = self._bank[k % _NOISE_BANK]
        elif self.pattern == "cells":
            self._fill_cells(view)
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

    def _setup_cells(self, rng: np.random.Generator) -> None:
        h, w = self.shape[-2], self.shape[-1]
        pad = int(np.ceil(self.motion)) + 1
        self._pad = pad
        self._rng = rng
        radius = max(2.0, min(h, w) / 64)
        count = max(1, int(h * w / (12 * radius) ** 2))
        size = int(np.ceil(3 * radius))
        yy, xx = np.mgrid[-size : size + 1, -size : size + 1]
        self._footprint = np.exp(-(yy**2 + xx**2) / (2 * radius**2)).astype(np.float32)
        self._size = size
        self._cy = rng.integers(pad + size, h + pad - size, count)
        self._cx = rng.integers(pad + size, w + pad - size, count)
        self._level = np.zeros(count, np.float32)
        base = rng.normal(100, 10, (h + 2 * pad, w + 2 * pad)).clip(0).astype(np.float32)
        for y, x in zip(self._cy, self._cx, strict=True):
            base[y - size : y + size + 1, x - size : x + size + 1] += 150 * self._footprint
        self._field_base = base
        self._field = base.copy()
        self._offset = np.zeros(2)
        rate = self.fps or 30.0
        self._decay = float(np.exp(-1 / (0.5 * rate)))  # 0.5 s decay
        self._spike_p = 0.5 / rate  # 0.5 spikes a second per cell
        self._max = float(self._info_max) if self._info_max is not None else None

    def _fill_cells(self, view: np.ndarray[Any, Any]) -> None:
        rng = self._rng
        field, size = self._field, self._size
        spikes = rng.random(len(self._level)) < self._spike_p
        old = self._level.copy()
        self._level *= self._decay
        self._level[spikes] += rng.uniform(1.0, 3.0, int(spikes.sum()))
        for i in np.nonzero(np.abs(self._level - old) > 1e-3)[0]:
            y, x = self._cy[i], self._cx[i]
            field[y - size : y + size + 1, x - size : x + size + 1] += (
                (self._level[i] - old[i]) * 300 * self._footprint
            )
        if self.motion:
            self._offset = np.clip(
                self._offset + rng.normal(0, self.motion / 8, 2), -self.motion, self.motion
            )
        dy, dx = (round(float(v)) for v in self._offset)
        h, w = self.shape[-2], self.shape[-1]
        pad = self._pad
        frame = field[pad + dy : pad + dy + h, pad + dx : pad + dx + w]
        # Shot noise (its normal approximation: the counts are in the hundreds).
        noise = rng.standard_normal((h, w), dtype=np.float32)
        noise *= np.sqrt(frame)
        noise += frame
        np.clip(noise, 0, self._max, out=noise)
        out = view.reshape(h, w) if view.ndim == 2 else view
        np.copyto(out, noise, casting="unsafe")

    def status(self) -> dict[str, Any]:
        """Frame ids taken so far (``frames_written``), frames delivered and
        dropped (callable through the handle while it runs)."""
        return {
            "frames_written": self.frames_written,
            "frames_delivered": self.frames_delivered,
            "frames_dropped": self.frames_dropped,
            "fps": self.fps,
            "overflow": self.overflow,
        }
