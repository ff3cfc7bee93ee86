#!/usr/bin/env python3
"""GPUs: host-to-device bandwidth from a ring slot, and FrameStats on the GPU.

Run on a machine with an NVIDIA GPU and the gpu extra (CuPy, nvidia-ml-py):

    .venv/bin/python bench/gpu.py

Figures, all in one run:

- host-to-device bandwidth for 8 MB frames (2048x2048 uint16) copied from a
  ring slot registered as pinned memory (what a GPU actor's inputs are),
  from CuPy's own pinned allocation, and from pageable numpy memory; the
  target: the ring slot at least 90% of CuPy pinned;
- the FrameStats pipeline at 2048x2048 with FrameStats on the GPU: frames/s
  flat out, and acquisition-to-result latency p50/p99.
"""

from __future__ import annotations

import os
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

SHAPE = (2048, 2048)
COPIES = 400


def bandwidth(cupy: object, host: np.ndarray, label: str) -> float:
    cp = cupy
    device = cp.empty(host.shape, host.dtype)  # type: ignore[attr-defined]
    stream = cp.cuda.Stream(non_blocking=True)  # type: ignore[attr-defined]
    for _ in range(10):  # warm up
        device.set(host, stream=stream)
    stream.synchronize()
    start = time.perf_counter()
    for _ in range(COPIES):
        device.set(host, stream=stream)
    stream.synchronize()
    rate = COPIES * host.nbytes / (time.perf_counter() - start) / 1e9
    print(f"  {label:36s} {rate:6.2f} GB/s")
    return rate


def main() -> int:
    try:
        import cupy
    except ImportError:
        print("bench/gpu.py needs CuPy and a GPU: pip install -e '.[gpu]' on a GPU machine")
        return 2
    from rigd.gpu import inventory, register_pinned
    from rigd.storage import FrameRing

    gpus = inventory()
    print(f"device: {gpus[0].name if gpus else cupy.cuda.runtime.getDeviceProperties(0)['name']}")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", gpus[0].uuid if gpus else "0")

    print("host-to-device, 2048x2048 uint16 (8 MB) frames:")
    pageable = np.random.default_rng(0).integers(0, 4096, SHAPE, dtype=np.uint16)
    pinned_mem = cupy.cuda.alloc_pinned_memory(pageable.nbytes)
    cupy_pinned = np.frombuffer(pinned_mem, np.uint16, pageable.size).reshape(SHAPE)
    cupy_pinned[...] = pageable
    pinned_rate = bandwidth(cupy, cupy_pinned, "CuPy pinned allocation")
    with FrameRing.create("bench-gpu", SHAPE, np.uint16, slot_count=4) as ring:
        unregister = register_pinned(*ring.slot_memory())
        try:
            writer = ring.writer()
            writer.put(pageable)
            slot = ring._read_views[0]
            ring_rate = bandwidth(cupy, slot, "ring slot, registered (pinned)")
            writer.close()
        finally:
            if unregister is not None:
                unregister()
    bandwidth(cupy, pageable, "pageable numpy")
    print(f"  ring slot / CuPy pinned: {ring_rate / pinned_rate:.2f} (target >= 0.90)")

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import rigd
    from rigd.pipeline import Pipeline, plan_pipeline

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "gpu.yaml"
        path.write_text(
            textwrap.dedent(
                """
                name: gpu
                actors:
                  - {name: source, class: pipeline_actors.Source, options: {shape: [2048, 2048]}}
                  - {name: stats, class: rigd.pipeline.FrameStats, num_gpus: 1}
                  - {name: sink, class: gpu_sink.StatsSink}
                links:
                  - {link: source.frames -> stats.frames, slots: 8}
                  - {link: stats.stats -> sink.stats, slots: 64}
                """
            )
        )
        Path(tmp, "gpu_sink.py").write_text(
            textwrap.dedent(
                """
                import time
                import numpy as np
                import rigd

                class StatsSink(rigd.Actor):
                    input_names = ("stats",)

                    def __init__(self):
                        self.lat = []

                    def run_step(self):
                        with self.inputs.stats.read(timeout=1.0) as item:
                            self.lat.append(time.time_ns() - item.timestamp_ns)

                    def results(self):
                        lat = np.array(self.lat[len(self.lat) // 10 :], dtype=float)
                        return len(self.lat), np.percentile(lat, [50, 99]).tolist()
                """
            )
        )
        sys.path.insert(0, tmp)
        rigd.init()
        pipeline = Pipeline(plan_pipeline(path))
        pipeline.start()
        seconds = 10.0
        time.sleep(seconds)
        count, (p50, p99) = rigd.get(pipeline.handle("sink").results.remote())
        backend = rigd.get(pipeline.handle("stats").status.remote())["backend"]
        pipeline.stop()
        rigd.shutdown()
    print(
        f"FrameStats pipeline 2048x2048 ({backend}): {count / seconds:.0f} frames/s,"
        f" latency p50 {p50 / 1e3:.0f} us, p99 {p99 / 1e3:.0f} us"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
