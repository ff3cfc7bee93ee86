"""The benchmark's actors: the workload of ../shared/peers (source -> processor -> sink)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import rigd

#: More slots than the benchmarks' rings have: ``fill: once`` fills this many frames.
_SLOTS_AT_MOST = 64


class Source(rigd.Actor):
    """Copies a prepared frame into the ring's slot, as Ray's source copies it into plasma."""

    output_names = ("frames",)

    def __init__(
        self,
        shape: list[int],
        fps: float | None = None,
        stamp: str = "complete",
        fill: str = "each",
    ) -> None:
        self.shape = tuple(shape)
        self.fps = fps
        self.stamp = stamp
        # ``each``: the frame is copied into every slot (a camera filling its
        # buffer). ``once``: each slot gets the frame the first time round, then
        # only the frame's number: the ring's slots are the prepared buffers a
        # link sends, as raw pyzmq sends one prepared array again and again.
        self.fill = fill
        self.n = 0

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"frames": (tuple(options["shape"]), "<u2")}

    def setup(self) -> None:
        self.frame = np.random.default_rng(0).integers(0, 4096, self.shape, dtype=np.uint16)
        self.t0 = time.monotonic()
        self.t0_ns = time.time_ns()  # the same instant on the clock frames are stamped with

    def run_step(self) -> None:
        stamp = None
        if self.fps:
            due = self.t0 + self.n / self.fps
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if self.stamp == "scheduled":
                # As Ray's peer stamps: the source's lateness and the filling
                # of the slot count as latency.
                stamp = self.t0_ns + round(self.n * 1e9 / self.fps)
        # By default stamped when the frame is complete in the slot (the
        # ring's default), as a camera stamps a frame it has delivered: the
        # copy stands for the camera filling its buffer, not for moving it.
        with self.outputs.frames.slot(frame_id=self.n, timestamp_ns=stamp) as view:
            if self.fill == "each" or self.n < _SLOTS_AT_MOST:
                np.copyto(view, self.frame)
            view[0, 0] = self.n & 0xFFFF
        self.n += 1


class Processor(rigd.Actor):
    """Touches the frame: the sum of one row (``work: mean`` reads all of it, as Ray's peer)."""

    input_names = ("frames",)
    output_names = ("result",)

    def __init__(self, work: str = "row") -> None:
        self.work = work
        self.out = np.zeros(1, np.float64)

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"result": ((1,), "<f8")}

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0) as frame:
            a = frame.array
            self.out[0] = a.mean() if self.work == "mean" else a[1].sum()
            fid, stamp = frame.frame_id, frame.timestamp_ns
        self.outputs.result.put(self.out, frame_id=fid, timestamp_ns=stamp)


class Sink(rigd.Actor):
    """Counts results and measures acquisition-to-result latency."""

    input_names = ("result",)

    def __init__(self) -> None:
        self.latencies: list[int] = []
        self.first = 0.0
        self.last = 0.0

    def run_step(self) -> None:
        with self.inputs.result.read(timeout=1.0) as item:
            now = time.time_ns()
            self.latencies.append(now - item.timestamp_ns)
        if not self.first:
            self.first = time.monotonic()
        self.last = time.monotonic()

    def results(self) -> dict[str, Any]:
        lat = np.array(self.latencies[len(self.latencies) // 10 :], dtype=np.float64)  # warm-up
        n = len(self.latencies)
        span = self.last - self.first
        return {
            "frames": n,
            "frames_per_s": (n - 1) / span if span > 0 else 0.0,
            "p50_us": float(np.percentile(lat, 50)) / 1e3 if len(lat) else None,
            "p99_us": float(np.percentile(lat, 99)) / 1e3 if len(lat) else None,
            "latencies_us": (lat / 1e3).tolist(),
        }
