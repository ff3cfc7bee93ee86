"""``rigd reprocess`` runs a file's actors as threads of its job: a failing actor fails
the file (sealed, its rings removed), never the job's process."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from rigd.actors import Actor
from rigd.service._reprocess import reprocess
from rigd.service._reprocess_table import table
from tests.service.test_reprocess import PIPELINE, run_file


class Broken(Actor):
    """Reads a frame and fails, every step."""

    input_names = ("frames",)
    output_names = ("sums",)
    max_step_errors = 5

    @classmethod
    def describe_outputs(cls, options: object, inputs: object) -> dict[str, object]:
        return {"sums": ((8,), "<i8")}

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0):
            raise RuntimeError("the model file is missing")


def test_a_failing_actor_fails_its_file_and_the_next_file_is_replayed_in_the_same_process(
    tmp_path: Path,
) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(PIPELINE.replace("tests.pipeline.actors.RowSum", f"{__name__}.Broken"))
    good = tmp_path / "rowsums.yaml"
    good.write_text(PIPELINE)
    frames = run_file(tmp_path / "first.h5", 1, 60)

    (failed,) = reprocess(broken, [str(tmp_path / "first.h5")], tmp_path / "out1")
    (done,) = reprocess(good, [str(tmp_path / "first.h5")], tmp_path / "out2")

    assert failed.state == "failed"
    assert "actor 'rowsum' failed 5 steps in a row" in (failed.error or "")
    assert "the model file is missing" in (failed.error or "")
    (sealed,) = (tmp_path / "out1").iterdir()  # what was recorded is kept, sealed
    with h5py.File(sealed, "r") as f:
        assert len(f["camera/frame_id"]) <= 60
    assert done.state == "done"
    assert done.frames == 120
    with h5py.File(done.output or "", "r") as f:
        np.testing.assert_array_equal(f["camera/frames"][:], frames)
        with h5py.File(tmp_path / "first.h5", "r") as source:  # the source's ids and times
            for field in ("frame_id", "timestamp_ns"):
                np.testing.assert_array_equal(f[f"camera/{field}"][:], source[f"camera/{field}"][:])
        expected = frames[:, 0, :].sum(axis=1, dtype=np.int64)[:, None]  # RowSum: the first row
        np.testing.assert_array_equal(f["sums/frames"][:], expected)
        assert f.attrs["reprocessed_from"] == str((tmp_path / "first.h5").resolve())


class Flaky(Actor):
    """Sums the first row of each frame, but raises at every frame id divisible by 7."""

    input_names = ("frames",)
    output_names = ("sums",)

    @classmethod
    def describe_outputs(cls, options: object, inputs: object) -> dict[str, object]:
        return {"sums": ((1,), "<i8")}

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0) as frame:
            if frame.frame_id % 7 == 0:
                raise ValueError(f"bad frame {frame.frame_id}")
            row = np.array([int(frame.array[0].sum())], np.int64)
            frame_id = frame.frame_id
        self.outputs.sums.put(row, frame_id=frame_id)


def test_a_file_done_with_steps_that_raised_says_so_in_its_row(tmp_path: Path) -> None:
    flaky = tmp_path / "flaky.yaml"
    flaky.write_text(PIPELINE.replace("tests.pipeline.actors.RowSum", f"{__name__}.Flaky"))
    run_file(tmp_path / "first.h5", 1, 60)  # frame ids 100..159: 8 divisible by 7

    (done,) = reprocess(flaky, [str(tmp_path / "first.h5")], tmp_path / "out")

    assert done.state == "done"
    assert done.warning == (
        "8 step(s) of actor 'rowsum' raised (the last: ValueError: bad frame 154); their "
        "frames are missing downstream"
    )
    assert "WARNING: 8 step(s) of actor 'rowsum' raised" in table([done])
    with h5py.File(done.output or "", "r") as f:
        assert len(f["sums/frames"]) == 52
