"""A recorder's bad option values are refused at load, with the file's line and key.

Was: they passed the load check and failed at start as a Python traceback
(exit 1), naming no file, line or key.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rigd.config import PipelineFileError
from rigd.pipeline import HDF5Recorder, TriggeredRecorder, check_replay, plan_pipeline
from tests.service.daemon import rigd_cli_in
from tests.service.test_reprocess import run_file

CAMERA = """\
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [8, 12], n_frames: 5}
"""


def _refused(tmp_path: Path, text: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PipelineFileError) as info:
        plan_pipeline(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}, line "), problem
    return problem


def _recorder(option: str) -> str:
    return (
        CAMERA
        + "  - name: recorder\n    class: rigd.pipeline.HDF5Recorder\n    options:\n"
        + f"      directory: rigd-data\n      {option}\n"
        + "links:\n  - camera.frames -> recorder.camera\n"
    )


@pytest.mark.parametrize(
    ("option", "key", "said"),
    [
        ("when_behind: sometimes", "when_behind", "got 'sometimes'"),
        ("write_buffers: -1", "write_buffers", "number of chunks >= 0, got -1"),
        ("write_buffers: 2.5", "write_buffers", "got 2.5"),
        ("template: '{foo}_{run_id}.h5'", "template", "unknown field(s) ['foo']"),
        ("template: '../../escape_{run_id}.h5'", "template", "a file name, not a path"),
        ("template: ''", "template", "a file name, not a path"),
        ("template: '{run_id'", "template", "expected '}' before end of string"),
    ],
)
def test_a_recorders_bad_option_value_is_refused_at_load_naming_its_line_and_key(
    tmp_path: Path, option: str, key: str, said: str
) -> None:
    line = _recorder(option).splitlines().index(f"      {option}") + 1
    problem = _refused(tmp_path, _recorder(option))
    assert f"line {line}, actors[1].options.{key}: recorder: " in problem
    assert said in problem


@pytest.mark.parametrize(
    ("directory", "said"),
    [
        ("/etc/passwd", "'/etc/passwd' is a file, not a directory"),
        ("/etc/passwd/runs", "cannot be created: '/etc/passwd' is a file"),
        ("/proc/rigd", "'/proc' is on a filesystem that holds no files"),
    ],
)
def test_a_recording_directory_that_cannot_hold_run_files_is_refused_at_load_creating_nothing(
    tmp_path: Path, directory: str, said: str
) -> None:
    text = CAMERA + f"record: [camera.frames]\nrecording:\n  directory: {directory}\n"
    problem = _refused(tmp_path, text)
    assert "line 7, recording.directory: recorder: " in problem
    assert said in problem
    assert not Path(directory).is_dir()


def test_a_missing_directory_that_can_be_made_passes_the_load_and_is_not_created(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ok.yaml"
    path.write_text(CAMERA + f"record: [camera.frames]\nrecording:\n  directory: {tmp_path}/a/b\n")
    plan_pipeline(path)
    assert not (tmp_path / "a").exists()  # created at start only


def test_a_triggered_recorders_bad_template_is_refused_at_load_with_its_key(
    tmp_path: Path,
) -> None:
    text = (
        CAMERA
        + "  - name: trig\n    class: rigd.pipeline.TriggeredRecorder\n    options:\n"
        + "      pre: 2\n      template: '{run_id'\n"
        + "links:\n  - {link: camera.frames -> trig.camera, policy: latest, slots: 16}\n"
    )
    problem = _refused(tmp_path, text)
    assert "line 9, actors[1].options.template: trig: " in problem


def test_the_constructors_refuse_what_planning_refuses() -> None:
    with pytest.raises(ValueError, match="when_behind is 'wait'"):
        HDF5Recorder(when_behind="sometimes")
    with pytest.raises(ValueError, match="unknown field"):
        HDF5Recorder(template="{foo}.h5")
    with pytest.raises(ValueError, match="is a file, not a directory"):
        TriggeredRecorder(directory="/etc/passwd")


def test_rigd_run_refuses_a_bad_recorder_value_with_exit_2_and_no_file(tmp_path: Path) -> None:
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text(_recorder("when_behind: sometimes"))

    result = rigd_cli_in(tmp_path, "run", str(pipeline))

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{pipeline}, line 9, actors[1].options.when_behind: recorder:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "rigd-data").exists()


def test_rigd_reprocess_refuses_a_recorders_bad_when_behind_before_any_file(
    tmp_path: Path,
) -> None:
    # Was: the replay rewrote it to wait, and the job finished done.
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text(_recorder("when_behind: sometimes"))
    with pytest.raises(PipelineFileError, match=r"line 9, actors\[1\]\.options\.when_behind"):
        check_replay(pipeline)
    run = tmp_path / "run.h5"
    run_file(run, 0, 3)

    result = rigd_cli_in(tmp_path, "reprocess", str(pipeline), str(run), "--out", "o")

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{pipeline}, line 9, actors[1].options.when_behind" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "o").exists()
