"""``rigd run``'s automatic run id (the time to the second) taken by a run
started in the same second: the claim goes on under ``ID-2``, ``ID-3``, ...;
an id the user gave is still refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigd.service._run_claim import claim_run_id


def test_a_taken_automatic_run_id_gets_the_next_free_suffix(tmp_path: Path) -> None:
    log = tmp_path / "rigd-data" / "20261201T001700.log"
    # Before, the second claim of one second's id raised FileExistsError, and
    # the second `rigd run` of that second was refused.
    first = claim_run_id(log, "20261201T001700", automatic=True)
    second = claim_run_id(log, "20261201T001700", automatic=True)
    (log.parent / "20261201T001700-3.log").write_text("a run before\n")  # used before
    third = claim_run_id(log, "20261201T001700", automatic=True)
    try:
        assert (first.run_id, first.path) == ("20261201T001700", log)
        assert second.run_id == "20261201T001700-2"
        assert second.path == log.parent / "20261201T001700-2.log"
        assert third.run_id == "20261201T001700-4"
        assert sorted(p.name for p in log.parent.iterdir()) == [
            "20261201T001700-2.log",
            "20261201T001700-3.log",
            "20261201T001700-4.log",
            "20261201T001700.log",
        ]
        assert (log.parent / "20261201T001700-3.log").read_text() == "a run before\n"
    finally:
        for claim in (first, second, third):
            claim.release(keep=False)
    # Given back, the first free id is the plain one again.
    assert sorted(p.name for p in log.parent.iterdir()) == ["20261201T001700-3.log"]


def test_a_run_id_the_user_gave_is_still_refused_when_taken(tmp_path: Path) -> None:
    log = tmp_path / "m12-s3.log"
    first = claim_run_id(log, "m12-s3")
    try:
        with pytest.raises(FileExistsError, match="run id 'm12-s3' is in use") as caught:
            claim_run_id(log, "m12-s3")
        assert "give another --run-id" in str(caught.value)
        assert sorted(tmp_path.iterdir()) == [log]  # no m12-s3-2.log
    finally:
        first.release(keep=False)
