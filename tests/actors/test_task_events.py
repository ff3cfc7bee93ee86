"""Task events: each call and task records its states and times (Ray's "Task Events")."""

from __future__ import annotations

import os
import signal

import pytest

import rigd
from tests.helpers import wait_until


@rigd.remote
class Worker:
    def work(self):
        return "done"

    def fail(self):
        raise KeyError("frame 7")

    @rigd.method(enable_task_events=False)
    def quiet(self):
        return "quiet"

    def pid(self):
        return os.getpid()


def _tasks(**filters: str) -> list[rigd.state.TaskInfo]:
    return rigd.state.list_tasks(**filters)


def _settled(actor_id: str, n: int) -> bool:
    done = [t for t in _tasks(actor_id=actor_id) if t.state in ("FINISHED", "FAILED")]
    return len(done) >= n


def test_actor_calls_record_submitted_running_and_finished_with_times() -> None:
    actor = Worker.remote()

    assert rigd.get([actor.work.remote(), actor.work.remote()]) == ["done", "done"]

    wait_until(lambda: _settled(actor._actor_id, 2), what="the events to reach the head")
    tasks = _tasks(actor_id=actor._actor_id, name="Worker.work")
    assert [t.state for t in tasks] == ["FINISHED", "FINISHED"]
    for t in tasks:
        assert t.submitted_at <= t.started_at <= t.finished_at


def test_a_failed_call_is_recorded_with_its_error() -> None:
    actor = Worker.remote()

    with pytest.raises(KeyError):
        rigd.get(actor.fail.remote())

    wait_until(lambda: _settled(actor._actor_id, 1), what="the events to reach the head")
    (task,) = _tasks(actor_id=actor._actor_id, state="FAILED")
    assert (task.name, task.error) == ("Worker.fail", "KeyError")


def test_enable_task_events_false_on_the_class_records_nothing() -> None:
    @rigd.remote(enable_task_events=False)
    class Actor:
        def ping(self):
            return "pong"

    actor = Actor.remote()
    other = Worker.remote()

    assert rigd.get(actor.ping.remote()) == "pong"
    assert rigd.get(other.work.remote()) == "done"

    wait_until(lambda: _settled(other._actor_id, 1), what="the other actor's events")
    assert _tasks(actor_id=actor._actor_id) == []


def test_enable_task_events_false_on_a_method_records_nothing_for_it() -> None:
    actor = Worker.remote()

    assert rigd.get(actor.quiet.remote()) == "quiet"
    assert rigd.get(actor.work.remote()) == "done"

    wait_until(lambda: _settled(actor._actor_id, 1), what="the events to reach the head")
    assert [t.name for t in _tasks(actor_id=actor._actor_id)] == ["Worker.work"]


def test_tasks_record_their_events_too() -> None:
    @rigd.remote
    def double(x):
        return 2 * x

    assert rigd.get(double.remote(21)) == 42

    def finished() -> bool:
        return [t.state for t in _tasks(name="double")] == ["FINISHED"]

    wait_until(finished, what="the task's events")
    (task,) = _tasks(name="double")
    assert task.started_at is not None


def test_an_actor_restart_is_an_event() -> None:
    actor = Worker.options(max_restarts=1, max_task_retries=1).remote()
    pid = rigd.get(actor.pid.remote())

    os.kill(pid, signal.SIGKILL)
    assert rigd.get(actor.work.remote(), timeout=30) == "done"

    (restart,) = _tasks(actor_id=actor._actor_id, state="ACTOR_RESTARTED")
    assert "SIGKILL" in (restart.error or "")
