#!/usr/bin/env python3
"""GPUs: uploads from ring slots, the processors on the GPU against numpy, and a
camera -> GPU processor -> recorder pipeline against the same on the CPU.

Run on a machine with an NVIDIA GPU and the gpu extra (CuPy, nvidia-ml-py):

    .venv/bin/python bench/gpu.py [--quick] [--json results.json]

(``bench/gpu_check.sh`` runs the ``gpu`` tests and this in one go.) Without
CuPy only the numpy figures are printed. Figures, all in one run:

1. host-to-device bandwidth for 8 MB frames (2048x2048 uint16) from a ring
   slot registered as pinned memory (what a GPU actor's inputs are), from
   CuPy's own pinned allocation, and from pageable numpy memory; target: the
   ring slot at least 90% of CuPy pinned;
2. DeviceFrames' overlap: frames per second when each frame is uploaded,
   then processed, then waited for, against the processors' way (frame k+1
   uploaded while frame k's kernels run);
3. each processor (MotionCorrection, DeltaFOverF, Bin, RoiTraces, and
   FrameTrigger's per-frame decision) at 512x512 and 2048x2048 uint16: frames per
   second flat out and per-frame latency (upload, compute, results back),
   numpy against CuPy;
4. the pipeline camera -> MotionCorrection -> recorder (shifts recorded, and
   a sink timing each shift record from the camera's stamp): flat out and
   paced (1 kHz at 512x512, 200 fps at 2048x2048), with the processor on the
   GPU and on the CPU; targets on the GPU: 512x512 at 1 kHz and 2048x2048 at
   200 fps with p99 latency under 5 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SIZES = ((512, 512), (2048, 2048))
RESULTS: dict[str, Any] = {}


def note(key: str, value: Any) -> None:
    RESULTS[key] = value


# -- 1. host-to-device bandwidth -----------------------------------------------------


def bandwidth(cp: Any, host: np.ndarray, label: str, copies: int) -> float:
    device = cp.empty(host.shape, host.dtype)
    stream = cp.cuda.Stream(non_blocking=True)
    for _ in range(10):  # warm up
        device.set(host, stream=stream)
    stream.synchronize()
    start = time.perf_counter()
    for _ in range(copies):
        device.set(host, stream=stream)
    stream.synchronize()
    rate = copies * host.nbytes / (time.perf_counter() - start) / 1e9
    print(f"  {label:36s} {rate:6.2f} GB/s")
    return rate


def h2d(cp: Any, copies: int) -> None:
    from rigd.gpu import register_pinned
    from rigd.storage import FrameRing

    shape = SIZES[1]
    print("1. host-to-device, 2048x2048 uint16 (8 MB) frames:")
    pageable = np.random.default_rng(0).integers(0, 4096, shape, dtype=np.uint16)
    pinned_mem = cp.cuda.alloc_pinned_memory(pageable.nbytes)
    cupy_pinned = np.frombuffer(pinned_mem, np.uint16, pageable.size).reshape(shape)
    cupy_pinned[...] = pageable
    pinned_rate = bandwidth(cp, cupy_pinned, "CuPy pinned allocation", copies)
    with FrameRing.create("bench-gpu", shape, np.uint16, slot_count=4) as ring:
        unregister = register_pinned(*ring.slot_memory())
        try:
            writer = ring.writer()
            reader = ring.reader()
            writer.put(pageable)
            with reader.read(timeout=1) as frame:
                ring_rate = bandwidth(cp, frame.array, "ring slot, registered (pinned)", copies)
            reader.close()
            writer.close()
        finally:
            if unregister is not None:
                unregister()
    pageable_rate = bandwidth(cp, pageable, "pageable numpy", copies)
    ratio = ring_rate / pinned_rate
    print(f"  ring slot / CuPy pinned: {ratio:.2f} (target >= 0.90)")
    note(
        "h2d_GBps",
        {"cupy_pinned": pinned_rate, "ring_slot": ring_rate, "pageable": pageable_rate},
    )
    note("h2d_ring_over_pinned", ratio)


# -- 2 and 3. processors in this process ---------------------------------------------


def processors() -> dict[str, Callable[[], Any]]:
    from rigd.pipeline import Bin, DeltaFOverF, FrameTrigger, MotionCorrection, RoiTraces

    rois = [{"rect": [16 * k, 16 * k, 12, 12]} for k in range(20)]
    return {
        "MotionCorrection": lambda: MotionCorrection(template_frames=1),
        "DeltaFOverF": lambda: DeltaFOverF(window_s=30, bin_s=1.0),
        "Bin 2x2, 4 frames": lambda: Bin(factor=2, frames=4),
        "RoiTraces (20 ROIs)": lambda: RoiTraces(rois=rois),
        "FrameTrigger (a decision)": lambda: FrameTrigger(
            when="max > 2 * mean_of_last(max, 50) or std > 1.5 * mean_of_last(std, 50)"
        ),
    }


class Harness:
    """Drives a processor's ``process`` as its actor does, from a pinned host frame."""

    def __init__(self, processor: Any, xp: Any, shape: tuple[int, int], frames: list[np.ndarray]):
        from rigd.gpu import DeviceFrames

        self.p = processor
        self.xp = xp
        self.frames = frames
        processor.xp = xp
        processor.prepare(shape, np.dtype(np.uint16))
        self.gpu = xp.__name__ == "cupy"
        self.device = DeviceFrames(shape, np.uint16) if self.gpu else None
        self.stream = xp.cuda.Stream(non_blocking=True) if self.gpu else None
        self.k = 0

    def _next(self) -> np.ndarray:
        frame = self.frames[self.k % len(self.frames)]
        self.k += 1
        return frame

    def _results(self, emissions: list[Any]) -> None:
        for e in emissions:
            for array in e.outputs.values():
                if hasattr(array, "get") and not isinstance(array, np.ndarray):
                    array.get(stream=self.stream)

    def one(self) -> None:
        """Upload, compute, results back: one frame's latency."""
        frame = self._next()
        if not self.gpu:
            self._results(self.p.process(frame, self.k, 0))
            return
        data, _ = self.device.upload(frame)
        with self.stream:
            emissions = self.p.process(data, self.k, 0)
        self.stream.synchronize()
        self._results(emissions)

    def overlapped(self, n: int) -> None:
        """n frames the actor's way: frame k+1 uploaded while frame k's kernels run."""
        if not self.gpu:
            for _ in range(n):
                self.one()
            return
        pending = None
        for _ in range(n):
            data, _ = self.device.upload(self._next())
            with self.stream:
                emissions = self.p.process(data, self.k, 0)
                done = self.stream.record()
            if pending is not None:
                pending[0].synchronize()
                self._results(pending[1])
            pending = (done, emissions)
        if pending is not None:
            pending[0].synchronize()
            self._results(pending[1])


def pinned_frames(cp: Any, shape: tuple[int, int], count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    frames = []
    for _ in range(count):
        host = rng.integers(0, 4096, shape, dtype=np.uint16)
        if cp is not None:
            mem = cp.cuda.alloc_pinned_memory(host.nbytes)
            pinned = np.frombuffer(mem, np.uint16, host.size).reshape(shape)
            pinned[...] = host
            host = pinned
        frames.append(host)
    return frames


def time_processor(
    make: Callable[[], Any],
    xp: Any,
    shape: tuple[int, int],
    frames: list[np.ndarray],
    budget: float,
) -> dict[str, float]:
    h = Harness(make(), xp, shape, frames)
    for _ in range(5):
        h.one()
    lat = []
    deadline = time.perf_counter() + budget / 2
    while time.perf_counter() < deadline and len(lat) < 2000:
        t = time.perf_counter()
        h.one()
        lat.append(time.perf_counter() - t)
    n = max(5, min(5000, int(len(lat) * 1.0)))
    t = time.perf_counter()
    h.overlapped(n)
    rate = n / (time.perf_counter() - t)
    lat_us = np.array(lat) * 1e6
    return {
        "frames_per_s": rate,
        "p50_us": float(np.percentile(lat_us, 50)),
        "p99_us": float(np.percentile(lat_us, 99)),
    }


def overlap(cp: Any, shape: tuple[int, int], frames: list[np.ndarray], n: int) -> None:
    from rigd.pipeline import MotionCorrection

    h = Harness(MotionCorrection(template_frames=1), cp, shape, frames)
    for _ in range(5):
        h.one()
    t = time.perf_counter()
    for _ in range(n):
        h.one()
    serial = n / (time.perf_counter() - t)
    t = time.perf_counter()
    h.overlapped(n)
    both = n / (time.perf_counter() - t)
    print(
        f"  MotionCorrection {shape[0]}x{shape[1]}: upload-then-compute {serial:7.0f} frames/s,"
        f" overlapped {both:7.0f} frames/s ({both / serial:.2f}x)"
    )
    note(f"overlap_{shape[0]}", {"serial": serial, "overlapped": both})


def in_process(cp: Any, quick: bool, tmp: Path) -> None:
    import rigd.gpu

    if cp is not None:
        print("2. DeviceFrames' overlap (upload of frame k+1 during frame k's kernels):")
        for shape in SIZES:
            overlap(cp, shape, pinned_frames(cp, shape, 4), 200 if quick else 1000)
    print("3. processors in one process, per frame: upload, compute, results back")
    makers = processors()
    for shape in SIZES:
        frames = pinned_frames(cp, shape, 4)
        for name, make in makers.items():
            row = {}
            for label, xp in (("numpy", np), ("cupy", cp)):
                if xp is None:
                    continue
                budget = (1.0 if quick else 2.0) if label == "numpy" else (2.0 if quick else 4.0)
                os.environ.pop(rigd.gpu.FAKE_GPUS_ENV, None)
                row[label] = time_processor(make, xp, shape, frames, budget)
            cells = "  ".join(
                f"{label}: {r['frames_per_s']:7.0f}/s p50 {r['p50_us']:7.0f} us"
                f" p99 {r['p99_us']:7.0f} us"
                for label, r in row.items()
            )
            speed = (
                f"  GPU/CPU {row['cupy']['frames_per_s'] / row['numpy']['frames_per_s']:.0f}x"
                if "cupy" in row
                else ""
            )
            print(f"  {shape[0]:4d} {name:22s} {cells}{speed}")
            note(f"processor_{shape[0]}_{name}", row)


# -- 4. pipelines ------------------------------------------------------------------------

PIPELINE = """
name: gpu_{tag}
actors:
  - name: camera
    class: pipeline_actors.Source
    options: {{shape: [{h}, {w}], fps: {fps}}}
  - name: motion
    class: rigd.pipeline.MotionCorrection
    options: {{template_frames: 2}}{gpu}
  - name: sink
    class: pipeline_actors.Sink
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {{directory: "{data}"}}
links:
  - {{link: camera.frames -> motion.frames, slots: 16}}
  - {{link: motion.shifts -> sink.result, slots: 256}}
  - {{link: motion.shifts -> recorder.shifts, slots: 256}}
"""


def pipeline_run(
    tmp: Path, shape: tuple[int, int], fps: float | None, gpu: bool, seconds: float
) -> dict[str, Any]:
    import rigd
    from rigd.pipeline import Pipeline, plan_pipeline

    tag = f"{shape[0]}_{'gpu' if gpu else 'cpu'}_{int(fps) if fps else 'flat'}"
    path = tmp / f"{tag}.yaml"
    path.write_text(
        textwrap.dedent(
            PIPELINE.format(
                tag=tag,
                h=shape[0],
                w=shape[1],
                fps=fps if fps else "null",
                gpu="\n    num_gpus: 1" if gpu else "",
                data=tmp / "data",
            )
        )
    )
    rigd.init(num_gpus=1 if gpu else 0)
    try:
        pipeline = Pipeline(plan_pipeline(path), run_id=tag)
        pipeline.start()
        time.sleep(seconds)  # a benchmark's measuring window, not a wait for a condition
        results = rigd.get(pipeline.handle("sink").results.remote())
        backend = rigd.get(pipeline.handle("motion").status.remote())["backend"]
        report = pipeline.stop()
    finally:
        rigd.shutdown()
    results.pop("latencies_us", None)
    results["backend"] = backend
    results["recorded"] = dict(report.frames)
    results["dropped"] = dict(report.dropped)
    return results


def pipelines(cp: Any, quick: bool, tmp: Path) -> None:
    print("4. camera -> MotionCorrection -> recorder (+ a sink timing each shift from the camera)")
    seconds = 4.0 if quick else 8.0
    for shape, paced in ((SIZES[0], 1000.0), (SIZES[1], 200.0)):
        for fps in (None, paced):
            row = {}
            for label, gpu in (("cpu", False), ("gpu", True)):
                if gpu and cp is None:
                    continue
                row[label] = pipeline_run(tmp, shape, fps, gpu, seconds)
            cells = "  ".join(
                f"{label} ({r['backend']}): {r['frames_per_s']:7.0f} frames/s"
                f" p50 {r['p50_us'] or 0:8.0f} us p99 {r['p99_us'] or 0:8.0f} us"
                for label, r in row.items()
            )
            what = f"paced {fps:.0f} Hz" if fps else "flat out"
            print(f"  {shape[0]}x{shape[1]} {what:13s} {cells}")
            note(f"pipeline_{shape[0]}_{'paced' if fps else 'flat'}", row)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs (about 3 minutes)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--only", choices=("h2d", "processors", "pipelines"), help="run one part only"
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    try:
        import cupy as cp
    except ImportError:
        cp = None
        print("no CuPy: numpy figures only (pip install -e '.[gpu]' on a GPU machine)")
    if cp is not None:
        from rigd.gpu import inventory

        gpus = inventory()
        name = gpus[0].name if gpus else cp.cuda.runtime.getDeviceProperties(0)["name"]
        name = name.decode() if isinstance(name, bytes) else name
        print(f"device: {name}")
        note("device", name)
        os.environ.setdefault("CUDA_VISIBLE_DEVICES", gpus[0].uuid if gpus else "0")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            if cp is not None and args.only in (None, "h2d"):
                h2d(cp, 100 if args.quick else 400)
            if args.only in (None, "processors"):
                in_process(cp, args.quick, Path(tmp))
            if args.only in (None, "pipelines"):
                pipelines(cp, args.quick, Path(tmp))
    finally:
        if args.json:
            args.json.write_text(json.dumps(RESULTS, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
