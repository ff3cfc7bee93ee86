"""``rigd reprocess``'s words: a wrong --out, --help, the replay's changes said once, the table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.service.daemon import rigd_cli_in
from tests.service.test_reprocess import PIPELINE, run_file
from tests.service.test_reprocess_pipelines import LOSSY_LIVE

FIX = "give a directory for the new run files (made if missing), e.g. --out ./rigd-reprocessed"


@pytest.mark.parametrize("kind", ["a file", "under a file", "/proc"])
def test_an_out_no_directory_can_be_made_at_is_one_sentence_with_the_fix_and_exit_2(
    tmp_path: Path, kind: str
) -> None:
    (tmp_path / "rowsums.yaml").write_text(PIPELINE)
    run_file(tmp_path / "run.h5", 1, 3)
    taken = tmp_path / "taken"
    taken.write_text("not a directory")
    out, expected = {
        "a file": (taken, f"--out {taken} is a file, not a directory; {FIX}"),
        "under a file": (
            taken / "x",
            f"--out {taken / 'x'} cannot be made: {taken} is a file; {FIX}",
        ),
        "/proc": (
            Path("/proc/x"),
            f"--out /proc/x cannot be made (No such file or directory); {FIX}",
        ),
    }[kind]

    result = rigd_cli_in(tmp_path, "reprocess", "rowsums.yaml", "run.h5", "--out", str(out))

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr == f"rigd reprocess: {expected}\n"
    assert "Errno" not in result.stderr
    assert taken.read_text() == "not a directory"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rowsums.yaml", "run.h5", "taken"]


def test_help_gives_outs_default() -> None:
    result = rigd_cli_in(Path.cwd(), "reprocess", "--help")
    assert result.returncode == 0, result.stderr
    assert "(default: ./rigd-reprocessed)" in " ".join(result.stdout.split())


def test_the_replays_changes_are_said_once_and_a_long_name_does_not_widen_the_table(
    tmp_path: Path,
) -> None:
    (tmp_path / "lossy.yaml").write_text(LOSSY_LIVE)
    long_name = "m12-" + "session-with-a-long-descriptive-name-" * 3 + "end.h5"
    for name in ("run.h5", long_name):
        run_file(tmp_path / name, 1, 5)

    result = rigd_cli_in(tmp_path, "reprocess", "lossy.yaml", "run.h5", long_name)

    assert result.returncode == 0, result.stdout + result.stderr
    # Was: three times each (the check, then once per file), one naming <pipeline>.
    assert result.stderr.count("latest -> lossless") == 1, result.stderr
    assert result.stderr.count("when_behind drop -> wait") == 1, result.stderr
    assert "replay of lossy.yaml: " in result.stderr
    assert "<pipeline>" not in result.stderr
    # The progress line keeps the full path; the table's column is capped at 60.
    assert f"[2/2] {tmp_path / long_name}: done" in result.stdout
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if " done " in line}
    elided = long_name[:29] + "..." + long_name[-28:]
    assert set(rows) == {"run.h5", elided}
    assert re.match(r"run\.h5 {56}done ", rows["run.h5"]), rows["run.h5"]
