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
    directory = "" if option.startswith("directory:") else "      directory: rigd-data\n"
    return (
        CAMERA
        + "  - name: recorder\n    class: rigd.pipeline.HDF5Recorder\n    options:\n"
        + f"{directory}      {option}\n"
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
        # Was: each passed the load and failed at start (a traceback), or in
        # rigd reprocess failed every file.
        (
            "compression: gzip",
            "compression",
            "unknown compression 'gzip': should be 'lz4', 'zstd' or 'bitshuffle-lz4'",
        ),
        ("compression: [lz4]", "compression", "unknown compression ['lz4']"),
        ("flush_interval: -1", "flush_interval", "finite number of seconds > 0, got -1"),
        ("flush_interval: 0", "flush_interval", "finite number of seconds > 0, got 0"),
        ("flush_interval: soon", "flush_interval", "seconds > 0, got the text 'soon'"),
        ("flush_interval: '1e-1'", "flush_interval", "(YAML reads 1e-1 as text: write 0.1)"),
        ("flush_interval: .nan", "flush_interval", "finite number of seconds > 0, got nan"),
        ("fsync_interval: .inf", "fsync_interval", "finite number of seconds > 0, got inf"),
        ("fsync_interval: 0", "fsync_interval", "finite number of seconds > 0, got 0"),
        ("fsync_interval: true", "fsync_interval", "a number of seconds > 0, got True"),
        ("latency_trace: maybe", "latency_trace", "true or false"),
        # Was: the first failed at start (File name too long), the second
        # wrote a file named with quotes.
        ("template: '{run_id:>300}'", "template", "{run_id:>300} has a format spec"),
        ("template: '{run_id!r}.h5'", "template", "{run_id!r} has a conversion"),
        ("template: '{date}_{time!s:4}'", "template", "write the field alone: {time}"),
        # Was: a literal ./~/data directory.
        ("directory: ~/data", "directory", "give the path without ~: rigd does not expand it"),
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


def test_a_recording_directory_under_a_tilde_is_refused_at_load_naming_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was: a directory named ~ in the working directory (a later rm -rf ~... is dangerous).
    monkeypatch.chdir(tmp_path)
    text = CAMERA + "record: [camera.frames]\nrecording:\n  directory: ~/data\n"
    problem = _refused(tmp_path, text)
    assert "line 7, recording.directory: give the path without ~: rigd does not expand it" in (
        problem
    )
    assert "e.g. /home/you/data" in problem
    assert not (tmp_path / "~").exists()


def test_the_constructors_refuse_the_stream_and_durability_options_planning_refuses() -> None:
    with pytest.raises(ValueError, match=r"should be 'lz4', 'zstd' or 'bitshuffle-lz4'"):
        HDF5Recorder(compression="gzip")
    with pytest.raises(ValueError, match="flush_interval must be a finite number of seconds"):
        HDF5Recorder(flush_interval=0)
    with pytest.raises(ValueError, match="fsync_interval is a number of seconds > 0, got the text"):
        HDF5Recorder(fsync_interval="soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="latency_trace is true or false"):
        HDF5Recorder(latency_trace="maybe")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="has a format spec"):
        TriggeredRecorder(template="{run_id:>300}")
    with pytest.raises(ValueError, match="starts with ~"):
        TriggeredRecorder(directory="~/data")
    with pytest.raises(ValueError, match="flush_interval must be a finite number of seconds"):
        TriggeredRecorder(flush_interval=-1)
    HDF5Recorder(compression="zstd", flush_interval=1, fsync_interval=2.5, latency_trace=False)


@pytest.mark.parametrize("option", ["compression: gzip", "flush_interval: soon"])
def test_rigd_reprocess_refuses_a_recorders_bad_option_before_any_file(
    tmp_path: Path, option: str
) -> None:
    # Was: every file of the job failed with the same error.
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text(_recorder(option))
    key = option.split(":")[0]
    with pytest.raises(PipelineFileError, match=rf"line 9, actors\[1\]\.options\.{key}"):
        check_replay(pipeline)


def test_the_record_shorthands_template_with_a_conversion_is_refused_at_load(
    tmp_path: Path,
) -> None:
    text = CAMERA + "record: [camera.frames]\nrecording:\n  template: '{run_id!r}'\n"
    problem = _refused(tmp_path, text)
    assert "line 7, recording.template: recorder: " in problem
    assert "{run_id!r} has a conversion" in problem
    assert "write the field alone: {run_id}" in problem
