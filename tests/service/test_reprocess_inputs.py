"""``rigd reprocess`` given one file twice refuses it in one line before
anything runs (before, it replayed it twice, the second output ``-2``); its
table's ``frames`` column says it counts every stream's frames."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rigd.service import main
from rigd.service._reprocess import FileResult
from rigd.service._reprocess_table import table

PIPELINE = "name: stats\nactors:\n  - {name: stats, class: rigd.pipeline.FrameStats}\n"


def test_a_file_given_twice_is_refused_in_one_line_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "stats.yaml").write_text(PIPELINE)
    (tmp_path / "run.h5").write_bytes(b"")  # refused before it is read
    with pytest.raises(SystemExit) as ended:
        main(["reprocess", "stats.yaml", "run.h5", "other.h5", "./run.h5", "--out", "out"])
    out, err = capsys.readouterr()

    assert (ended.value.code, out) == (2, "")
    assert err.splitlines() == [
        "rigd reprocess: a file is given more than once: run.h5 (files 1, 3); each file is "
        "replayed once: give it once; nothing was started"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.h5", "stats.yaml"]  # no out/


def test_one_file_by_two_names_is_one_file_and_two_files_of_one_name_are_two(
    tmp_path: Path,
) -> None:
    from rigd.service._reprocess_inputs import repeated_files

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for d in "ab":
        (tmp_path / d / "run.h5").write_bytes(b"")
    os.link(tmp_path / "a/run.h5", tmp_path / "hard.h5")
    (tmp_path / "soft.h5").symlink_to(tmp_path / "b/run.h5")

    assert repeated_files([str(tmp_path / "a/run.h5"), str(tmp_path / "b/run.h5")]) is None
    hard = repeated_files([str(tmp_path / "a/run.h5"), str(tmp_path / "hard.h5")])
    assert hard is not None
    assert "(files 1, 2)" in hard
    soft = repeated_files([str(tmp_path / "soft.h5"), "x.h5", str(tmp_path / "b/run.h5")])
    assert soft is not None
    assert "(files 1, 3)" in soft


def test_the_tables_frames_column_says_it_adds_up_every_stream() -> None:
    # An 843-frame run with two recorded streams holds 1686 frames in all.
    row = FileResult("/data/run.h5", "done", frames=1686, seconds=2.0, outputs=("run-r.h5",))
    header, line = table([row]).splitlines()
    assert header.split()[:5] == ["file", "state", "frames", "(all", "streams)"]
    assert line.split()[:4] == ["run.h5", "done", "1686", "2.0"]
