"""Running pipelines as improv's users do: failures that say so, pauses, per-actor
logs and GUI actors, with real actor processes, rings and run files."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import h5py
import pytest

import rigd
from rigd.exceptions import PipelineFailedError
from rigd.pipeline import Pipeline, plan_pipeline
from tests.helpers import wait_until
from tests.pipeline.sources import kill_and_await_restart

ROOT = Path(__file__).parents[2]

FLAKY = """\
name: flaky
actors:
  - name: flaky
    class: tests.pipeline.actors.Flaky
    max_restarts: 1
"""

CAMERA = """\
name: paused
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [16, 16], dtype: uint16, fps: 200, pattern: counter}
    max_restarts: 1
  - name: chatty
    class: tests.pipeline.control_actors.Chatty
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {directory: @DATA@}
links:
  - camera.frames -> chatty.frames
  - {link: camera.frames -> recorder.camera, slots: 64}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text).replace("@DATA@", str(tmp_path / "data")))
    return path


def written(pipeline: Pipeline) -> int:
    return next(link.written for link in pipeline.status().links if link.ring == "camera.frames")


def recorded(pipeline: Pipeline) -> int:
    (link,) = [link for link in pipeline.status().links if link.ring == "camera.frames"]
    return next(read for name, read, _ in link.readers if name == "recorder.camera")


def ledger(path: str) -> list[str]:
    with h5py.File(path, "r") as f:
        return [row["reason"].decode() for row in f["camera/dropped"][:]]


def test_an_actor_that_dies_for_good_fails_wait_with_its_last_error(tmp_path: Path) -> None:
    pipeline = Pipeline(plan_pipeline(write(tmp_path, FLAKY)))
    pipeline.start()
    try:
        with pytest.raises(PipelineFailedError) as failed:
            pipeline.wait(timeout=60)
    finally:
        report = pipeline.stop()

    assert failed.value.actor == "flaky"
    assert failed.value.last_error == "RuntimeError: the device is unplugged"
    assert str(failed.value) == (
        "actor 'flaky' died and will not be restarted: its run_step failed max_step_errors "
        "times in a row, so it gave up; its last error: RuntimeError: the device is unplugged"
    )
    assert report.state == "failed"
    assert report.failure == str(failed.value)
    assert report.last_errors == {"flaky": "RuntimeError: the device is unplugged"}
    assert report.restarts["flaky"] == 1


def test_rigd_run_exits_1_naming_the_failed_actor_and_its_last_error(tmp_path: Path) -> None:
    path = write(tmp_path, FLAKY.replace("max_restarts: 1", "max_restarts: 0"))

    out = subprocess.run(
        [sys.executable, "-m", "rigd", "run", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )

    assert out.returncode == 1, out.stderr
    assert ": failed after " in out.stdout
    assert "its last error: RuntimeError: the device is unplugged" in out.stdout
    assert "rigd run: the pipeline failed: actor 'flaky' died" in out.stderr


def test_a_paused_run_holds_its_sources_drains_its_readers_and_notes_the_span(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    pipeline = Pipeline(plan_pipeline(write(tmp_path, CAMERA)), run_id="p1")
    pipeline.start()
    try:
        wait_until(lambda: written(pipeline) >= 20, timeout=30, what="frames")
        with pytest.raises(RuntimeError, match=r"^only a paused pipeline can resume"):
            pipeline.resume()

        pipeline.pause()
        held = written(pipeline)
        wait_until(lambda: recorded(pipeline) == held, timeout=30, what="the recorder to drain")
        camera = rigd.get(pipeline.handle("camera").__rigd_status__.remote())

        assert pipeline.state == "paused"
        assert camera["state"] == "paused"
        assert written(pipeline) == held
        with pytest.raises(RuntimeError, match=r"^only a running pipeline can pause; .*resume"):
            pipeline.pause()
        kill_and_await_restart(pipeline, "camera")
        wait_until(
            lambda: (
                rigd.get(pipeline.handle("camera").__rigd_status__.remote())["state"] == "paused"
            ),
            timeout=30,
            what="the restarted camera to hold, as the run is paused",
        )
        span = pipeline.resume()
        wait_until(lambda: written(pipeline) >= held + 20, timeout=30, what="frames after")
        pipeline.pause()  # and stopped while paused
    finally:
        report = pipeline.stop()

    assert report.state == "stopped"
    assert report.pauses[0] == span
    assert span.ended_by == "resume"
    assert report.pauses[1].ended_by == "stop"
    reasons = ledger(report.files[0])
    assert reasons.count("paused") == 2
    assert reasons[-1].startswith("stopped while paused, after ")
    assert [r for r in reasons if r.startswith("resumed after ")] == [
        f"resumed after {span.duration_s:.1f} s"
    ]
    # Per-actor logs: named after the actor, on stderr and in the run's log file.
    assert report.log == str(tmp_path / "data" / "p1.log")
    lines = Path(report.log).read_text().splitlines()
    assert any(line.endswith(" chatty INFO chatty: set up, ready") for line in lines)
    assert any(" chatty INFO chatty: frame " in line for line in lines)
    assert "chatty: set up, ready" in capfd.readouterr().err.splitlines()


def test_a_pause_longer_than_the_limit_resumes_on_its_own(tmp_path: Path) -> None:
    pipeline = Pipeline(plan_pipeline(write(tmp_path, CAMERA)), max_pause_s=0.5)
    resumed = threading.Event()
    pipeline.on_resumed(resumed.set)
    pipeline.start()
    try:
        wait_until(lambda: written(pipeline) >= 10, timeout=30, what="frames")
        pipeline.pause()
        held = written(pipeline)

        assert resumed.wait(30), "the limit did not resume the run"
        assert pipeline.state == "running"
        wait_until(lambda: written(pipeline) > held + 10, timeout=30, what="frames after")
    finally:
        report = pipeline.stop()

    (span,) = report.pauses
    assert span.ended_by == "limit"
    assert span.duration_s >= 0.5
    assert any(r.endswith("(the pause limit)") for r in ledger(report.files[0]))
    assert report.log is not None
    assert (
        " supervisor WARNING rigd.pipeline._pause: the pause reached its limit of 0.5 s"
        in Path(report.log).read_text()
    )
    with pytest.raises(ValueError, match=r"^max_pause_s must be more than 0 s, got 0"):
        Pipeline(plan_pipeline(write(tmp_path, CAMERA)), max_pause_s=0)


def test_a_gui_actor_draws_a_processors_output_on_its_main_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.chdir(ROOT)  # the example's classes import from the repository root
    text = (ROOT / "examples/live_plot/pipeline.yaml").read_text()
    text = text.replace("rigd-data/live_plot.png", str(tmp_path / "live.png"))
    path = tmp_path / "live_plot.yaml"
    path.write_text(text)
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    plot = pipeline.handle("plot")
    try:
        wait_until(
            lambda: rigd.get(plot.drawn.remote())["draws"] >= 3,
            timeout=60,
            what="three redraws of the live plot",
        )
        drawn = rigd.get(plot.drawn.remote())
    finally:
        report = pipeline.stop()

    assert drawn["backend"].lower() == "agg"
    assert drawn["gui_main_thread"] is True
    assert drawn["step_main_thread"] is False
    assert drawn["records"] >= 3
    assert drawn["last_frame_id"] >= 0
    assert report.state == "stopped"
    assert (tmp_path / "live.png").stat().st_size > 0
    assert os.path.exists(tmp_path / "live.png")
