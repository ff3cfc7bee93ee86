"""A truncated copy of an unsealed run file: `rigd recover`, `inspect`, `export` and
`reprocess` refuse it alike (one test, ``check_whole``); `export` says in one line
what is wrong with its input or its output, and writes nothing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from rigd.pipeline import replay_file
from rigd.service._export import export_nwb_file
from rigd.storage import check_whole, export_nwb, inspect_run, recover_run
from tests.service.test_reprocess import PIPELINE
from tests.storage.test_recover_guards import killed_run, sealed_run


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_cut_copy_of_an_unsealed_file_is_truncated_to_recover_inspect_export_and_reprocess(
    tmp_path: Path,
) -> None:
    # Was: inspect listed every frame and export and reprocess said "seal it with
    # rigd recover", which then said the file was truncated.
    pytest.importorskip("pynwb")
    dead = killed_run(tmp_path / "dead.h5")
    data = dead.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) * 3 // 4])  # as `head -c $((S*3/4))`
    before = digest(cut)
    said = f"{cut} is truncated: it holds {len(data) * 3 // 4} bytes"

    with pytest.raises(ValueError, match=said) as recovered:
        recover_run(cut)
    wording = str(recovered.value)
    assert "Copy the whole file again" in wording
    for refuse in (check_whole, inspect_run):
        with pytest.raises(ValueError, match=said) as raised:
            refuse(cut)
        assert str(raised.value) == wording
    nwb = tmp_path / "cut.nwb"
    with pytest.raises(ValueError, match=said) as raised:
        export_nwb(cut, nwb)
    assert str(raised.value) == wording
    assert not nwb.exists()
    row = replay_file(PIPELINE, cut, str(tmp_path / "out"))
    assert row["state"] == "failed"
    assert row["error"] == f"ValueError: {wording}"
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    assert digest(cut) == before  # nothing of it was changed
    # The whole file is not truncated: it is unsealed, and recover seals it.
    check_whole(dead)
    assert inspect_run(dead).writer_gone


def test_export_says_in_one_line_that_its_input_is_truncated_or_its_directory_missing(
    tmp_path: Path,
) -> None:
    # Was: HDF5's "Unable to synchronously open file (truncated file: eof = ...)" and
    # "[Errno 2] Unable to synchronously create file (... flags = 13, o_flags = 242)".
    pytest.importorskip("pynwb")
    whole = sealed_run(tmp_path / "whole.h5", frames=20)
    cut = tmp_path / "cut.h5"
    cut.write_bytes(whole.read_bytes()[:-1000])
    nwb = tmp_path / "cut.nwb"
    with pytest.raises(ValueError, match=f"^{cut} is truncated: it holds") as raised:
        export_nwb(cut, nwb)
    assert "Copy the whole file again" in str(raised.value)
    assert not nwb.exists()
    # The daemon's export (GET /v1/runs/ID/export) says the same, with no metadata hint.
    with pytest.raises(ValueError, match=f"^{cut} is truncated") as api:
        export_nwb_file(cut, {"subject_id": "m1"})
    assert str(api.value) == str(raised.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.h5", "whole.h5"]

    for parent, what in (
        (tmp_path / "nonexist" / "dir", "does not exist"),
        (whole, "is not a directory"),
    ):
        with pytest.raises(FileNotFoundError) as raised:
            export_nwb(whole, parent / "x.nwb")
        assert str(raised.value) == (
            f"cannot write {parent / 'x.nwb'}: its directory {parent} {what}; make it, "
            "or give another path for the NWB export"
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.h5", "whole.h5"]
