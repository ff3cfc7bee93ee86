#!/usr/bin/env python3
"""Triggered capture: from the triggering frame to its event in the file, events
sustained, the camera never held back, and what a decision costs per frame.

    .venv/bin/python bench/trigger.py [--seconds 10]

1. camera (paced) -> TriggeredRecorder (pre = post = 100 frames), the
   camera also writing a TTL events stream that marks a bright frame every
   260 frames (far enough apart that windows do not merge), at 512x512 @
   500 fps and 2048x2048 @ 100 fps: a SWMR reader in this process polls the
   run file and notes when each event is complete in it. Figures: trigger
   to complete-in-the-file (p50, p99; it includes the 100 post frames'
   own time, printed beside it), events per second, frames the camera
   dropped (must be 0), frames the recorder lost to the ring.
2. The decision's cost per frame (FrameTrigger: five statistics and the
   expression), numpy here; ``bench/gpu.py`` measures it on CuPy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent

PIPELINE = """
name: trigger_bench
actors:
  - name: camera
    class: trigger_source.SpikySource
    options: {{shape: [{n}, {n}], fps: {fps}, gap: {gap}}}
  - name: recorder
    class: rigd.pipeline.TriggeredRecorder
    options:
      directory: "{data}"
      pre: 100
      post: 100
      flush_interval: 0.1
      events: [ttl]
links:
  - {{link: camera.frames -> recorder.camera, policy: latest, slots: {slots}}}
  - {{link: camera.ttl -> recorder.ttl, slots: 64}}
"""

SOURCE = '''
import time
import numpy as np
import rigd

class SpikySource(rigd.Actor):
    """A paced camera with a bright frame every ``gap`` frames, and a TTL line
    (an events stream) that marks each bright frame, as a stimulus line would."""
    output_names = ("frames", "ttl")

    def __init__(self, shape, fps, gap):
        self.shape, self.fps, self.gap = tuple(shape), fps, gap
        self.k = 0
        self.spikes = []

    @classmethod
    def describe_outputs(cls, options, inputs):
        return {"frames": (tuple(options["shape"]), "<u2"), "ttl": ((1,), "<f8")}

    def setup(self):
        self.dim = np.full(self.shape, 100, np.uint16)
        self.bright = np.full(self.shape, 60000, np.uint16)
        self.t0 = time.monotonic()

    def run_step(self):
        delay = self.t0 + self.k / self.fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        spike = self.k % self.gap == self.gap // 2
        frame = self.bright if spike else self.dim
        stamp = time.time_ns()
        if spike:
            self.spikes.append((self.k, stamp))
        self.outputs.frames.put(frame, frame_id=self.k, timestamp_ns=stamp)
        if spike:
            self.outputs.ttl.put(np.ones(1), frame_id=self.k, timestamp_ns=stamp)
        self.k += 1

    def report(self):
        return self.k, self.spikes
'''


def run(tmp: Path, n: int, fps: float, seconds: float, slots: int) -> dict[str, Any]:
    import h5py

    import rigd
    from rigd.pipeline import Pipeline, plan_pipeline

    gap = 260  # > pre + post: events never merge
    (tmp / "trigger_source.py").write_text(SOURCE)
    sys.path.insert(0, str(tmp))
    path = tmp / f"trigger_{n}.yaml"
    path.write_text(
        textwrap.dedent(PIPELINE.format(n=n, fps=fps, gap=gap, data=tmp / f"data{n}", slots=slots))
    )
    rigd.init()
    pipeline = Pipeline(plan_pipeline(path), run_id=f"bench{n}")
    pipeline.start()
    recorder = pipeline.handle("recorder")
    run_file = rigd.get(recorder.summary.remote())["path"]
    seen: dict[int, int] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        # A SWMR reader, as a viewer follows the run: when is each event complete?
        with h5py.File(run_file, "r", swmr=True) as f:
            events = f["events"][:]
        now = time.time_ns()
        for event in events:
            if event["complete"] and int(event["trigger_frame_id"]) not in seen:
                seen[int(event["trigger_frame_id"])] = now
        time.sleep(0.002)  # the reader's polling period, not a wait in a test
    sent, spikes = rigd.get(pipeline.handle("camera").report.remote())
    report = pipeline.stop()
    rigd.shutdown()
    stamps = dict(spikes)
    lat = np.array([(seen[k] - stamps[k]) / 1e6 for k in seen if k in stamps])
    with h5py.File(report.files[0], "r") as f:
        lost = int(f["camera/dropped"]["count"].sum())
        final = f["events"][:]
    post_ms = 100 / fps * 1e3
    return {
        "events": len(final),
        "complete": int(final["complete"].sum()) if len(final) else 0,
        "events_per_s": len(seen) / seconds,
        "p50_ms": float(np.percentile(lat, 50)) if len(lat) else None,
        "p99_ms": float(np.percentile(lat, 99)) if len(lat) else None,
        "post_window_ms": post_ms,
        "camera_frames": sent,
        "camera_rate": sent / seconds,
        "recorder_lost": lost,
    }


def decision_cost() -> None:
    sys.path.insert(0, str(HERE))
    from gpu import Harness
    from rigd.pipeline import FrameTrigger

    when = "max > 2 * mean_of_last(max, 50) or std > 1.5 * mean_of_last(std, 50)"
    for n in (512, 2048):
        frames = [
            np.random.default_rng(k).integers(0, 4096, (n, n), dtype=np.uint16) for k in range(4)
        ]
        h = Harness(FrameTrigger(when=when), np, (n, n), frames)
        for _ in range(5):
            h.one()
        times = []
        for _ in range(50 if n == 512 else 10):
            t = time.perf_counter()
            h.one()
            times.append(time.perf_counter() - t)
        print(f"  FrameTrigger decision, {n}x{n}, numpy: p50 {np.median(times) * 1e6:8.0f} us")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--dir", type=Path, default=None, help="where run files go (default: a temporary dir)"
    )
    parser.add_argument(
        "--slots", type=int, default=300, help="the recorded link's slots (pre is 100)"
    )
    args = parser.parse_args()
    print("1. trigger -> event complete in the file (pre = post = 100 frames)")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n, fps in ((512, 500.0), (2048, 100.0)):
            r = run(Path(tmp), n, fps, args.seconds, args.slots)
            timing = (
                f"trigger -> complete p50 {r['p50_ms']:.0f} ms p99 {r['p99_ms']:.0f} ms"
                if r["p50_ms"] is not None
                else "no event complete"
            )
            print(
                f"  {n}x{n} @ {fps:.0f} fps: {r['events']} events, {r['complete']} complete "
                f"({r['events_per_s']:.2f}/s), {timing} (the 100 post frames take "
                f"{r['post_window_ms']:.0f} ms); camera {r['camera_rate']:.0f} frames/s; frames "
                f"lost to the ring {r['recorder_lost']}"
            )
    print("2. the decision's cost per frame")
    decision_cost()
    return 0


if __name__ == "__main__":
    sys.exit(main())
