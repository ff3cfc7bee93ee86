"""``rigd reprocess``: a pipeline's mistakes named once, and what a new file keeps of its source."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.config import PipelineFileError
from rigd.service._reprocess import reprocess
from rigd.storage import RunWriter, StreamSpec
from tests.service.daemon import rigd_cli_in
from tests.service.test_reprocess import PIPELINE, run_file

WRONG = """name: wrong
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [8, 12]}
  - name: rowsum
    class: tests.pipeline.actors.RowSum
    options: {gain: 2}
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
links:
  - {link: camera.frames -> rowsum.frames}
  - {link: camera.frames -> recorder.camera}
  - {link: rowsum.sums -> recordr.sums}
"""


def test_a_pipelines_mistakes_are_named_once_with_its_own_lines_before_any_file(
    tmp_path: Path,
) -> None:
    # Was: each run file failed on its own, naming the run file and a line of
    # the YAML generated for it.
    pipeline = tmp_path / "wrong.yaml"
    pipeline.write_text(WRONG)
    files = [str(tmp_path / f"run{k}.h5") for k in range(3)]
    for k, path in enumerate(files):
        run_file(Path(path), k, 5)

    result = rigd_cli_in(tmp_path, "reprocess", str(pipeline), *files, "--out", str(tmp_path / "o"))

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == ""  # no file was started
    unknown_option = f"{pipeline}, line 8, actors[1].options: rowsum (tests.pipeline.actors.RowSum)"
    unknown_actor = (
        f"{pipeline}, line 14, links[2]: link 'rowsum.sums -> recordr.sums' names actor "
        "'recordr', which is not in actors"
    )
    for problem in (unknown_option, unknown_actor):
        assert result.stderr.count(problem) == 1, result.stderr
    assert "run0.h5" not in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        # No recorder: named at the actors list.
        (
            lambda t: (
                t.replace("  - {link: rowsum.sums -> recorder.sums}\n", "")
                .replace("  - {link: camera.frames -> recorder.camera}\n", "")
                .replace(
                    "  - name: recorder\n    class: rigd.pipeline.HDF5Recorder\n"
                    "    options: {directory: rigd-data}\n",
                    "",
                )
            ),
            ("line 3, actors: the pipeline has no HDF5Recorder", "record: [camera.frames]"),
        ),
        # A source whose output feeds a processor but is not recorded: named at that link.
        (
            lambda t: t.replace("  - {link: camera.frames -> recorder.camera}\n", ""),
            (
                "line 13, links[0]: source 'camera' is not recorded (its output 'frames' feeds "
                "rowsum.frames)",
                "link it to the recorder (camera.frames -> recorder.camera)",
            ),
        ),
        # The record: shorthand naming an actor the file does not have: named at its entry.
        (
            lambda t: t + "record: [rowsums.sums]\n",
            ("line 16, record[0]: link 'rowsums.sums -> recorder.rowsums_sums'", "names actor"),
        ),
    ],
    ids=["no_recorder", "unrecorded_source", "record_shorthand"],
)
def test_a_pipeline_that_cannot_be_replayed_is_refused_naming_its_line(
    tmp_path: Path, edit: object, named: tuple[str, str]
) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(edit(PIPELINE))  # type: ignore[operator]
    run_file(tmp_path / "run.h5", 1, 5)

    with pytest.raises(PipelineFileError) as caught:
        reprocess(pipeline, [str(tmp_path / "run.h5")], tmp_path / "out")

    assert str(caught.value).startswith(f"{pipeline}, {named[0]}"), str(caught.value)
    assert named[1] in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_a_run_files_own_problem_names_the_file_and_the_pipelines_line(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    spec = StreamSpec("behaviour", (8, 12), np.dtype(np.uint16))
    with RunWriter(tmp_path / "other.h5", [spec], run_id="other") as writer:
        writer.write("behaviour", np.zeros((8, 12), np.uint16), 0, 1)

    (result,) = reprocess(pipeline, [str(tmp_path / "other.h5")], tmp_path / "out")

    assert result.state == "failed"
    # The link that names the stream (was: line 6, the source's options, which say nothing of it).
    assert f"{pipeline}, line 14, links[1]: camera: " in (result.error or "")
    assert f"{tmp_path / 'other.h5'} has no stream 'camera'" in (result.error or "")


def test_a_reprocessed_file_keeps_its_sources_run_id_times_and_pipeline(tmp_path: Path) -> None:
    # Was: the new file's run_id, start_time, stop_time and pipeline replaced
    # the source's, which were kept nowhere.
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    run_file(tmp_path / "run.h5", 2, 10)
    (first,) = reprocess(pipeline, [str(tmp_path / "run.h5")], tmp_path / "one")
    assert first.state == "done", first.error
    # And again, from the reprocessed file: each generation names the one before.
    (second,) = reprocess(pipeline, [first.output or ""], tmp_path / "two")
    assert second.state == "done", second.error

    def attrs(path: str | Path) -> dict[str, object]:
        with h5py.File(path, "r") as f:
            return dict(f.attrs)

    source, one, two = (
        attrs(tmp_path / "run.h5"),
        attrs(first.output or ""),
        attrs(second.output or ""),
    )
    for new, old in ((one, source), (two, one)):
        assert new["run_id"] != old["run_id"]
        assert new["reprocessed_from_run_id"] == old["run_id"]
        assert new["reprocessed_from_start_time"] == old["start_time"]
        assert new["reprocessed_from_stop_time"] == old["stop_time"]
        assert new.get("reprocessed_from_pipeline") == old.get("pipeline")
    assert "rigd.pipeline.FilePlayback" in str(one["pipeline"])  # what ran: the replay
