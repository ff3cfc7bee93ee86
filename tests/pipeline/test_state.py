"""Run states: one enum, a transition table, and the end of a run as an event."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from pathlib import Path

import pytest

from rigd.pipeline import (
    ACTIVE_RUN_STATES,
    RUN_TRANSITIONS,
    IllegalTransitionError,
    Pipeline,
    RunState,
    StateMachine,
    plan_pipeline,
)
from rigd.service._records import DAEMON_TRANSITIONS, DaemonState, RunRecord

_ENDING = frozenset({RunState.STOPPING, RunState.FAILED, RunState.STOPPED})


def machine() -> StateMachine[RunState]:
    return StateMachine(RunState.CREATED, RUN_TRANSITIONS, ending=_ENDING, name="pipeline t")


def test_every_state_has_a_row_and_every_move_leads_to_a_state() -> None:
    for table, states in ((RUN_TRANSITIONS, RunState), (DAEMON_TRANSITIONS, DaemonState)):
        assert set(table) == set(states)
        for targets in table.values():
            assert targets <= set(states)


def test_states_are_the_strings_the_api_and_journal_carry() -> None:
    assert RunState.RUNNING == "running"
    assert json.dumps({"state": RunState.COMPLETE}) == '{"state": "complete"}'
    assert {str(s) for s in ACTIVE_RUN_STATES} == {"starting", "running", "paused", "stopping"}


def test_a_move_the_table_does_not_list_is_refused_and_changes_nothing() -> None:
    states = machine()
    with pytest.raises(IllegalTransitionError, match="'created' to 'running'"):
        states.move(RunState.RUNNING)
    assert states.state is RunState.CREATED
    assert not states.ended


def test_the_supervisors_walk_load_run_stop_is_allowed_and_ends_once() -> None:
    states = machine()
    reasons: list[str] = []
    states.on_end(reasons.append)
    for state in (RunState.READY, RunState.RUNNING, RunState.STOPPING, RunState.STOPPED):
        states.move(state)
    assert reasons == ["stopping"]
    assert states.end_reason == "stopping"


def test_paused_is_entered_from_running_and_left_to_running_or_stopping() -> None:
    states = machine()
    states.move(RunState.READY)
    states.move(RunState.RUNNING)
    states.move(RunState.PAUSED)
    assert not states.ended
    states.move(RunState.RUNNING)
    states.move(RunState.PAUSED)
    states.move(RunState.STOPPING)
    assert states.ended
    assert DaemonState.PAUSED in DAEMON_TRANSITIONS[DaemonState.RUNNING]


def test_a_guarded_move_happens_only_from_the_states_named() -> None:
    states = machine()
    assert states.move(RunState.STOPPING, when=frozenset({RunState.RUNNING})) is None
    assert states.state is RunState.CREATED


def test_the_end_wakes_a_waiter_at_once_and_a_late_callback_runs_immediately() -> None:
    states = machine()
    states.move(RunState.READY)
    states.move(RunState.RUNNING)
    assert not states.wait_end(0.01)
    woke = threading.Event()
    waiter = threading.Thread(target=lambda: states.wait_end(30) and woke.set())
    waiter.start()
    states.end("finished")
    states.end("finished")  # once only
    waiter.join(30)
    assert woke.is_set()
    late: list[str] = []
    states.on_end(late.append)
    assert late == ["finished"]


def test_a_failing_callback_does_not_keep_the_others_from_the_end() -> None:
    states = machine()
    seen: list[str] = []

    def broken(reason: str) -> None:
        raise RuntimeError("a subscriber's bug")

    states.on_end(broken)
    states.on_end(seen.append)
    states.end("finished")
    assert seen == ["finished"]


def test_a_run_record_moves_along_the_table_and_reads_its_journal_state() -> None:
    record = RunRecord("r1", "demo", "starting", "2026-11-30T00:00:00.000+00:00", {})  # type: ignore[arg-type]
    assert record.state is RunState.STARTING
    record.move(RunState.RUNNING)
    with pytest.raises(IllegalTransitionError):
        record.move(RunState.READY)
    assert record.to_dict()["state"] == "running"
    with pytest.raises(ValueError, match="'sleeping'"):
        RunRecord("r2", "demo", "sleeping", "", {})  # type: ignore[arg-type]


def test_a_pipeline_delivers_its_end_to_callbacks_when_its_sources_finish(
    tmp_path: Path,
) -> None:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: ends
            actors:
              - name: camera
                class: rigd.pipeline.SimulatedCamera
                options: {shape: [8, 8], dtype: uint16, n_frames: 50}
              - name: stats
                class: rigd.pipeline.FrameStats
            links:
              - camera.frames -> stats.frames
            """
        )
    )
    pipeline = Pipeline(plan_pipeline(path))
    ended = threading.Event()
    reasons: list[str] = []

    def on_end(reason: str) -> None:
        reasons.append(reason)
        ended.set()

    pipeline.on_end(on_end)
    pipeline.start()
    try:
        assert ended.wait(60), "the end of the run never came"
        assert reasons == ["finished"]
        assert pipeline.state == RunState.RUNNING  # ended, not yet stopped
        started = time.monotonic()
        assert pipeline.wait(0)
        assert time.monotonic() - started < 0.1  # an event, not a poll
    finally:
        report = pipeline.stop()
    assert report.state is RunState.STOPPED
    assert reasons == ["finished"]
