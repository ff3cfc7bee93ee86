"""Two `rigd reprocess` into one --out at once: the loser's row, refused by its
recorder (the other job's file appeared after the replay's own check), says what
`rigd reprocess` takes: another --out, or move the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigd.config import load_pipeline
from rigd.pipeline import plan_pipeline
from rigd.pipeline._inline import run_inline
from rigd.pipeline._replay_config import replay_config
from rigd.pipeline._replay_guard import error_text
from rigd.service._reprocess_outputs import taken_meanwhile
from tests.service.test_reprocess import PIPELINE
from tests.service.test_reprocess_carry import _source


def test_a_row_whose_recorder_met_another_jobs_file_says_choose_another_out(
    tmp_path: Path,
) -> None:
    # Was: "FileExistsError: ... Give this run a new run id, or put {run_id} or {time}
    # in the recording template": rigd reprocess takes no run id.
    _source(tmp_path / "r1.h5", 4)
    out = tmp_path / "out"
    out.mkdir()
    replay = replay_config(
        load_pipeline("<test>", text=PIPELINE), str(tmp_path / "r1.h5"), str(out), one_thread=True
    )
    (name,) = replay.outputs("r1-reprocessed").values()
    theirs = out / name
    theirs.write_bytes(b"the other job's file")  # made after the replay's own check
    with pytest.raises(FileExistsError) as raised:  # the recorder's refusal, for real
        run_inline(plan_pipeline(replay.pfile), "r1-reprocessed", {}, 60.0)
    row = {"file": str(tmp_path / "r1.h5"), "state": "failed", "frames": 0}
    row["error"] = error_text(raised.value, row["file"], 60.0)
    assert "Give this run a new run id" in row["error"]

    said = taken_meanwhile(row, [theirs])
    assert said == {
        **row,
        "error": f"FileExistsError: {theirs} exists; a run file is never overwritten "
        "(choose another --out, or move it)",
    }
    assert theirs.read_bytes() == b"the other job's file"
    # Rows of other failures, or done, are left as they are.
    other = {**row, "error": "ValueError: something else"}
    assert taken_meanwhile(other, [theirs]) == other
    done = {**row, "state": "done", "error": None}
    assert taken_meanwhile(done, [theirs]) == done
