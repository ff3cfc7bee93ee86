"""``rigd run``'s summary says what became of the recording: no "records nothing"
for a pipeline with recorders, no "files repaired" where there are none."""

from __future__ import annotations

from rigd.pipeline import RunReport, RunState
from rigd.service._run import format_report


def report(files: tuple[str, ...] = (), frames: dict[str, int] | None = None) -> RunReport:
    return RunReport(
        run_id="early1",
        state=RunState.FAILED,
        duration_s=0.5,
        files=files,
        frames=frames or {},
        dropped={},
        restarts={},
        failure="the start was interrupted",
    )


def test_a_start_interrupted_before_the_recorder_opened_its_file_says_nothing_was_recorded() -> (
    None
):
    # Was: "failed after 0.5 s (forced: actors killed, run files repaired)" and
    # "(this pipeline records nothing)", of a pipeline with a recorder and no file.
    text = format_report(report(), forced=True, recorders=("recorder",))
    assert text.splitlines() == [
        "run early1: failed after 0.5 s (forced: actors killed)",
        "  failure: the start was interrupted",
        "  (nothing was recorded: the start ended before recorder 'recorder' opened its file)",
    ]


def test_the_summary_names_every_recorder_and_says_files_were_repaired_only_when_kept() -> None:
    text = format_report(report(), forced=True, recorders=("left", "right"))
    assert text.endswith(
        "(nothing was recorded: the start ended before recorders 'left', 'right' opened "
        "their files)"
    )
    kept = format_report(
        report(files=("/data/early1.h5",), frames={"camera": 12}),
        forced=True,
        recorders=("recorder",),
    )
    assert kept.splitlines()[0] == (
        "run early1: failed after 0.5 s (forced: actors killed, run files repaired)"
    )
    assert "  file: /data/early1.h5" in kept
    assert "nothing was recorded" not in kept


def test_a_pipeline_without_recorders_still_records_nothing() -> None:
    assert format_report(report()).endswith("  (this pipeline records nothing)")
    # A recorder that opened its file and recorded nothing: the file is not kept.
    assert format_report(report(frames={"camera": 0}), recorders=("recorder",)).endswith(
        "  (no file kept: nothing was recorded)"
    )
