"""Pipeline actors for the tests, importable by path (``tests.pipeline.actors.X``)."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from rigd import Actor


class RowSum(Actor):
    """A processor: reads a frame, writes the sum of its first row (as in bench/pipeline.py)."""

    input_names = ("frames",)
    output_names = ("sums",)

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"sums": ((1,), "<i8")}

    def __init__(self) -> None:
        self.done = 0
        self._row = np.zeros(1, np.int64)

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0) as frame:
            self._row[0] = int(frame.array[0].sum())
            frame_id, stamp = frame.frame_id, frame.timestamp_ns
        self.outputs.sums.put(self._row, frame_id=frame_id, timestamp_ns=stamp)
        self.done += 1

    def pid(self) -> int:
        return os.getpid()

    def count(self) -> int:
        return self.done


class SlowViewer(Actor):
    """A viewer that takes ``delay`` seconds per frame: it must never slow anyone."""

    input_names = ("frames",)

    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self.seen: list[int] = []

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0) as frame:
            self.seen.append(frame.frame_id)
        time.sleep(self.delay)

    def frames_seen(self) -> list[int]:
        return list(self.seen)


class Counter(Actor):
    """A sink that checks the counter pattern and counts frames; public methods to query."""

    input_names = ("frames",)

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.bad: list[int] = []
        self.paused_calls = 0
        self.resumed_calls = 0

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0) as frame:
            k = frame.frame_id
            if not (frame.array == k % 65536).all():
                self.bad.append(k)
            self.ids.append(k)

    def pause(self) -> None:
        self.paused_calls += 1

    def resume(self) -> None:
        self.resumed_calls += 1

    def report(self) -> dict[str, Any]:
        return {
            "ids": list(self.ids),
            "bad": list(self.bad),
            "paused": self.paused_calls,
            "resumed": self.resumed_calls,
        }


class Flaky(Actor):
    """Fails every step; after ``max_step_errors`` in a row it gives up."""

    output_names = ()
    max_step_errors = 50

    def run_step(self) -> None:
        time.sleep(0.001)
        raise RuntimeError("the device is unplugged")


class NotAnActor:
    """A class that is not a rigd.Actor."""


class TakesSmall(Actor):
    """Declares the input it takes, so a mismatched link is refused."""

    input_names = ("frames",)

    @classmethod
    def describe_inputs(cls, options: Any) -> dict[str, Any]:
        return {"frames": ((8, 8), "uint16")}

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0):
            pass


class ArraySource(Actor):
    """Frames from a ``.npy`` stack ``(n, ...)``, flat out, stamped as if taken at ``fps``.

    The stamps are synthetic (``k / fps`` seconds after 1 s), so processors
    that keep time by the stamps (a baseline window) are tested exactly.
    """

    output_names = ("frames",)

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        stack = np.load(options["path"], mmap_mode="r")
        return {"frames": (tuple(stack.shape[1:]), stack.dtype.str)}

    def __init__(
        self, path: str, fps: float = 100.0, paced: bool = False, stall_after: int | None = None
    ) -> None:
        self.stack = np.load(path)
        self.fps = fps
        self.paced = paced
        self.stall_after = stall_after
        self.k = 0
        self.t0 = 0.0

    def setup(self) -> None:
        self.t0 = time.monotonic()

    def run_step(self) -> None:
        if self.k >= len(self.stack):
            self.finish()
            return
        if self.stall_after is not None and self.k >= self.stall_after:
            # A camera that stops sending frames (but does not end the stream).
            time.sleep(0.05)
            return
        stamp = 1_000_000_000 + round(self.k * 1e9 / self.fps)
        if self.paced:
            # As a camera delivers: at its own rate, stamped with the real time.
            delay = self.t0 + self.k / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            stamp = time.time_ns()
        self.outputs.frames.put(self.stack[self.k], frame_id=self.k, timestamp_ns=stamp)
        self.k += 1

    def sent(self) -> int:
        return self.k


class SlowSetup(RowSum):
    """A RowSum whose setup takes ``setup_s`` seconds (a model or a GPU context to load)."""

    def __init__(self, setup_s: float = 1.0) -> None:
        super().__init__()
        self.setup_s = setup_s

    def setup(self) -> None:
        time.sleep(self.setup_s)  # the work of a slow setup, not a wait in a test
