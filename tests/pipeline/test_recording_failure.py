"""A recorder whose disk fills (a real 20 MB tmpfs) ends the run as failed, with the cause.

Was: steps with nothing to write reset the failing-step count, so the
recorder raised ``RecordingError`` ~900 times without giving up, the camera
ran its 15 s, and ``rigd run`` exited 0 saying "0 dropped".
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rigd._exceptions import PipelineFailedError
from rigd.pipeline import Pipeline, plan_pipeline
from rigd.storage import inspect_run
from tests.helpers import small_tmpfs

ROOT = Path(__file__).resolve().parents[2]
# 512x512 uint16 at 100 fps for 15 s: 750 MB, where 20 MB holds ~37 frames.
# Two inputs, as in the report: the recorder's idle wait on the one with no
# frame made steps that raised nothing, and the failing count never got far.
PIPELINE = """
name: full
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {{shape: [512, 512], dtype: uint16, fps: 100, n_frames: 1500}}
  - name: stats
    class: rigd.pipeline.FrameStats
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {{directory: {data}}}
links:
  - {{link: camera.frames -> stats.frames}}
  - {{link: camera.frames -> recorder.camera}}
  - {{link: stats.stats -> recorder.stats}}
"""


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs as the recording directory (needs root and mount)."""
    with small_tmpfs(tmp_path / "small") as data:
        yield data


def pipeline_file(tmp_path: Path, data: Path) -> Path:
    path = tmp_path / "full.yaml"
    path.write_text(textwrap.dedent(PIPELINE.format(data=data)))
    return path


def kept_frames(message: str) -> int:
    found = re.search(r"\{'camera': (\d+), 'stats': \d+\}", message)
    assert found, message
    return int(found[1])


def assert_file_keeps(path: Path, kept: int) -> None:
    """The file is sealed after the error and holds every frame it says it kept."""
    summary = inspect_run(path)
    assert summary.run_state == "recovered"
    camera = {s.name: s for s in summary.streams}["camera"]
    assert camera.frames == kept > 0


def no_rings_of(pid: int) -> bool:
    return not [n for n in os.listdir("/dev/shm") if n.startswith(f"rigd-{pid}-")]


def test_rigd_run_on_a_full_disk_exits_1_with_the_cause(tmp_path: Path, tmpfs: Path) -> None:
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", "rigd", "run", str(pipeline_file(tmp_path, tmpfs))],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        out, err = proc.communicate(timeout=120)
    took = time.monotonic() - started
    assert proc.returncode == 1, out + err
    (file,) = tmpfs.glob("*.h5")
    line = re.search(r"rigd run: the pipeline failed: (.*)", err)
    assert line, err
    assert line[1] == "actor 'recorder' died and will not be restarted; its cause is in the summary"
    failure = re.search(r"  failure: (.*)", out)
    assert failure, out
    message = failure[1]
    assert "actor 'recorder'" in message
    assert str(file) in message
    kept = kept_frames(message)
    assert "failed after" in out, out
    # The cause once in the summary, and once in each line of the log that gives it:
    # was three times in one line, "No space left on device" twice in each.
    assert out.count("No space left on device") == 1, out
    assert out.count("RecordingError") == 1, out
    for text in err.splitlines():
        assert text.count("No space left on device") <= 1, text
    assert f"camera: {kept} frames recorded" in out
    assert_file_keeps(file, kept)
    # The run ended at the error, not after the camera's 15 s.
    assert took < 14, f"the run went on for {took:.1f} s after the disk filled"
    assert no_rings_of(proc.pid)


def test_pipeline_wait_raises_and_stop_reports_the_full_disk(tmp_path: Path, tmpfs: Path) -> None:
    pipeline = Pipeline(plan_pipeline(pipeline_file(tmp_path, tmpfs)))
    pipeline.start()
    try:
        with pytest.raises(PipelineFailedError) as failed:
            pipeline.wait(timeout=60)
    finally:
        report = pipeline.stop()
    error = failed.value
    assert error.actor == "recorder"
    assert error.last_error is not None
    assert error.last_error.startswith("RecordingError:")
    assert "No space left on device" in error.last_error
    assert report.state == "failed"
    assert report.failure is not None
    assert "No space left on device" in report.failure
    (file,) = tmpfs.glob("*.h5")
    assert str(file) in report.failure
    assert_file_keeps(file, kept_frames(report.failure))
    assert no_rings_of(os.getpid())
