"""A run that fails seals its files ``run_state: failed`` with its failure.

Was: an actor that gave up (``max_step_errors``) failed the run (``rigd run``
said ``failed``, exit 1), but the recorders were stopped as in a clean stop
and sealed their files ``complete``, with no ``failure``: ``rigd inspect``
and h5py said the run was complete.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import h5py
import pytest

from rigd.exceptions import PipelineFailedError
from rigd.pipeline import Pipeline, plan_pipeline
from rigd.storage import RunWriter, StreamSpec, inspect_run

# ``Flaky`` gives up after 50 failing steps of 1 ms: the run fails within a second.
CRASH = """\
name: crash
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {{shape: [8, 8], dtype: uint16, fps: 200, pattern: counter}}
  - name: flaky
    class: tests.pipeline.actors.Flaky
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {{directory: "{data}"}}
links:
  - {{link: camera.frames -> recorder.camera, slots: 64}}
"""


def test_a_run_whose_actor_gives_up_seals_its_file_failed_with_the_failure(
    tmp_path: Path,
) -> None:
    path = tmp_path / "crash.yaml"
    path.write_text(textwrap.dedent(CRASH.format(data=tmp_path / "data")))
    pipeline = Pipeline(plan_pipeline(path), run_id="crash1")
    pipeline.start()
    try:
        with pytest.raises(PipelineFailedError, match="the device is unplugged"):
            pipeline.wait(timeout=60)
    finally:
        report = pipeline.stop()
    assert report.state == "failed"
    assert "actor 'flaky' died" in (report.failure or ""), report.failure
    (file,) = report.files
    summary = inspect_run(file)
    assert summary.run_state == "failed"
    assert summary.failure == report.failure
    with h5py.File(file, "r") as f:  # any reader: sealed, not a file to recover
        assert f.attrs["run_state"] == "failed"
        assert f.attrs["failure"] == report.failure
        assert f["camera"].attrs["frames_recorded"] == report.frames["camera"]


def test_a_writer_closed_with_a_failure_seals_failed_and_without_one_complete(
    tmp_path: Path,
) -> None:
    for name, failure, state in (("bad", "node gpu_pc lost", "failed"), ("ok", None, "complete")):
        path = tmp_path / f"{name}.h5"
        writer = RunWriter(path, [StreamSpec("camera", (4, 4), "uint16")], run_id=name)
        writer.close(failure=failure)
        summary = inspect_run(path)
        assert (summary.run_state, summary.failure) == (state, failure or "")
