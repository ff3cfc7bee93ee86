"""``rigd reprocess``: what a new file says of a source that did not complete, and
the frames a refused row counts."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.service._reprocess import reprocess
from rigd.service._summary import format_summary
from rigd.storage import (
    RunWriter,
    StreamSpec,
    check_metadata,
    inspect_run,
    mark_failed,
    recover_run,
)
from tests.service.test_reprocess import PIPELINE
from tests.service.test_reprocess_outputs import killed_writer

FAILURE = "RecordingError: the disk is full (errno 28); free space and record again"


def _pipeline(tmp_path: Path) -> Path:
    pipeline = tmp_path / "rowsums.yaml"
    pipeline.write_text(PIPELINE)
    return pipeline


def _source(path: Path, count: int) -> None:
    spec = StreamSpec("camera", (8, 12), np.dtype(np.uint16))
    frames = np.random.default_rng(3).integers(0, 4000, (count, 8, 12), dtype=np.uint16)
    with RunWriter(path, [spec], run_id=path.stem, metadata={"subject_id": "M12"}) as writer:
        for k, frame in enumerate(frames):
            writer.write("camera", frame, k, 1_700_000_000_000_000_000 + k * 10_000_000)


def test_a_failed_sources_state_is_said_and_its_failure_is_not_carried_as_metadata(
    tmp_path: Path,
) -> None:
    # Was: a done row with no warning, and a new file that carried the source's
    # failure attribute as if it were the user's metadata.
    source = tmp_path / "failed.h5"
    _source(source, 6)
    mark_failed(source, FAILURE)

    (result,) = reprocess(_pipeline(tmp_path), [str(source)], tmp_path / "out")

    said = f"the source run's state was failed: {FAILURE}"
    assert result.state == "done", result.error
    assert result.warning is not None
    assert said in result.warning
    with h5py.File(result.output or "", "r") as f:
        attrs = dict(f.attrs)
        frames = len(f["camera/frames"])
    assert frames == 6
    assert "failure" not in attrs
    assert attrs["run_state"] == "complete"  # the replay itself completed
    assert said in attrs["provenance"]
    assert attrs["subject_id"] == "M12"  # the user's metadata is still carried


def test_a_recovered_sources_state_is_said_and_a_complete_ones_is_not(tmp_path: Path) -> None:
    recovered = tmp_path / "crashed.h5"
    killed_writer(recovered)
    recover_run(recovered)
    complete = tmp_path / "complete.h5"
    _source(complete, 4)

    first, second = reprocess(_pipeline(tmp_path), [str(recovered), str(complete)], tmp_path / "o")

    assert (first.state, second.state) == ("done", "done"), (first.error, second.error)
    assert first.warning is not None
    assert "the source run's state was recovered (left open, repaired by rigd recover at " in (
        first.warning
    )
    assert second.warning is None
    with h5py.File(first.output or "", "r") as f:
        assert "the source run's state was recovered" in f.attrs["provenance"]
        assert "recovered_time" not in f.attrs
    with h5py.File(second.output or "", "r") as f:
        assert "state was" not in f.attrs["provenance"]


def test_rigds_failure_attribute_is_its_own_not_metadata_and_inspect_shows_it(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValueError, match="'failure' is reserved for rigd's own run attributes"):
        check_metadata({"failure": "none"})
    path = tmp_path / "failed.h5"
    _source(path, 2)
    mark_failed(path, FAILURE)

    summary = inspect_run(path)

    assert summary.failure == FAILURE
    assert "failure" not in summary.metadata
    assert f"  run failed: failed ({FAILURE})" in format_summary(summary).splitlines()


def test_a_row_refused_for_outputs_already_there_counts_none_of_their_frames(
    tmp_path: Path,
) -> None:
    # Was: the refused row's frames were the earlier job's file's.
    pipeline = _pipeline(tmp_path)
    source = tmp_path / "run.h5"
    _source(source, 5)
    (first,) = reprocess(pipeline, [str(source)], tmp_path / "out")
    assert (first.state, first.frames) == ("done", 10)  # camera and sums

    (again,) = reprocess(pipeline, [str(source)], tmp_path / "out")

    assert again.state == "failed"
    assert "FileExistsError" in (again.error or "")
    assert "never overwritten" in (again.error or "")
    assert again.frames == 0
    assert inspect_run(first.output or "").frames == 10  # the earlier output, untouched
