"""The stale-ring sweep ``rigd reprocess`` runs per job and per Ray task, against one
file's replay (the work it is added to), in the same run.

    flock /tmp/rigd-bench.lock .venv/bin/python bench/stale_rings.py [--entries 20 500]

For each count of live rigd rings in /dev/shm (empty files named as rings of this
process: the sweep checks each owner's pid, and removes none), the sweep's time
(median of 200), then a 300-frame 64x64 file's replay (``replay_file``, median of 5),
and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from rigd.pipeline import replay_file
from rigd.storage import RunWriter, StreamSpec, remove_stale_rings

PIPELINE = """
name: bench
actors:
  - {name: camera, class: rigd.pipeline.SimulatedCamera, options: {shape: [64, 64]}}
  - {name: stats, class: rigd.pipeline.FrameStats}
  - {name: recorder, class: rigd.pipeline.HDF5Recorder}
links:
  - {link: camera.frames -> stats.frames}
  - {link: camera.frames -> recorder.camera}
  - {link: stats.stats -> recorder.stats}
"""


def sweep_s(entries: int) -> tuple[float, int]:
    names = [f"/dev/shm/rigd-{os.getpid()}-ring-bench-sweep-{i}" for i in range(entries)]
    for name in names:
        open(name, "x").close()
    try:
        times = []
        for _ in range(200):
            t = time.perf_counter()
            remove_stale_rings()
            times.append(time.perf_counter() - t)
        return statistics.median(times), len(os.listdir("/dev/shm"))
    finally:
        for name in names:
            os.unlink(name)


def replay_s(tmp: Path) -> float:
    source = tmp / "source.h5"
    spec = StreamSpec("camera", (64, 64), np.dtype(np.uint16))
    frames = np.random.default_rng(0).integers(0, 4000, (300, 64, 64), dtype=np.uint16)
    with RunWriter(source, [spec], run_id="source") as writer:
        for k, frame in enumerate(frames):
            writer.write("camera", frame, k, 1_700_000_000_000_000_000 + k)
    times = []
    for k in range(5):
        t = time.perf_counter()
        row = replay_file(PIPELINE, str(source), str(tmp / f"out{k}"))
        times.append(time.perf_counter() - t)
        assert row["state"] == "done", row["error"]
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, nargs="+", default=[20, 500])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        replay = replay_s(Path(tmp))
    print(f"replay of a 300-frame 64x64 file: {replay * 1e3:.1f} ms")
    for entries in args.entries:
        sweep, present = sweep_s(entries)
        print(
            f"sweep, {entries} live rings ({present} entries in /dev/shm): "
            f"{sweep * 1e3:.2f} ms = {sweep / replay:.2%} of the replay"
        )


if __name__ == "__main__":
    main()
