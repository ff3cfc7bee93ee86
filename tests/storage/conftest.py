"""Run files shared by the storage tests: one a real pipeline records, one from before NeXus."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

import rigd
from rigd.pipeline import Pipeline, plan_pipeline

DATA = Path(__file__).parent / "data"
N_FRAMES = 60

PIPELINE = """
name: nexus
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [32, 48], fps: 400, n_frames: @N@, pattern: counter, overflow: block}
  - name: stats
    class: rigd.pipeline.FrameStats
  - name: motion
    class: rigd.pipeline.MotionCorrection
    options: {template_frames: 4}
links:
  - camera.frames -> stats.frames
  - camera.frames -> motion.frames
record: [camera.frames, stats.stats, motion.shifts]
recording: {directory: "@DATA@"}
"""


@pytest.fixture(scope="session")
def run_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run recorded by a real pipeline: a camera, its stats and motion shifts."""
    tmp = tmp_path_factory.mktemp("nexus")
    path = tmp / "pipeline.yaml"
    path.write_text(PIPELINE.replace("@DATA@", str(tmp / "data")).replace("@N@", str(N_FRAMES)))
    pipeline = Pipeline(plan_pipeline(path), run_id="nexus-run")
    pipeline.start()
    try:
        assert pipeline.wait(60), "the pipeline did not finish in time"
    finally:
        report = pipeline.stop()
    rigd.shutdown()
    (file,) = report.files
    return Path(file)


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    """A run file rigd wrote before NeXus (tests/storage/data/make_run_before_nexus.py)."""
    path = tmp_path / "old.h5"
    with gzip.open(DATA / "run_before_nexus.h5.gz") as src, open(path, "wb") as dst:
        shutil.copyfileobj(src, dst)
    return path
