"""``rigd run`` refuses at load what this machine's CPUs and GPUs can never meet."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = """\
name: too_big
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [64, 64], fps: 100, n_frames: 10}
  - name: stats
    class: rigd.pipeline.FrameStats
    num_cpus: 1e3
    num_gpus: 1
links:
  - camera.frames -> stats.frames
record: [camera.frames]
"""


def test_resources_this_machine_lacks_are_refused_at_load_naming_the_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "too-big.yaml").write_text(PIPELINE)
    proc = subprocess.run(
        [sys.executable, "-m", "rigd", "run", "too-big.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "RIGD_FAKE_GPUS": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    cpus = os.cpu_count()
    assert (
        f"too-big.yaml, line 8, actors[1].num_cpus: actor 'stats' asks for num_cpus=1000 but "
        f"this machine has {cpus} CPUs; ask for at most {cpus}, or run the pipeline on a "
        "machine with more" in proc.stderr
    )
    assert (
        "too-big.yaml, line 9, actors[1].num_gpus: actor 'stats' asks for num_gpus=1 "
        "(1 whole GPU) but this runtime has no GPUs; run it on a machine with a GPU" in proc.stderr
    )
    assert "FrameStats asks" not in proc.stderr
    assert "nothing was started" in proc.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["too-big.yaml"]  # no run file, no log
