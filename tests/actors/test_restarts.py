"""Fault tolerance: max_restarts and max_task_retries (Ray's guide, with rigd)."""

from __future__ import annotations

import logging
import os
import signal

import pytest

import rigd
from rigd.exceptions import ActorDiedError
from tests.helpers import pid_alive, wait_until


@rigd.remote(max_restarts=3, max_task_retries=2)
class Actor:
    def __init__(self, label="camera"):
        self.label = label
        self.calls = 0

    def pid(self):
        return os.getpid()

    def count(self):
        self.calls += 1
        return self.label, self.calls

    def die_once(self, marker):
        if not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return "survived"

    def die(self):
        os.kill(os.getpid(), signal.SIGKILL)


def _restarts(handle: rigd.actor.ActorHandle) -> int:
    (info,) = [a for a in rigd.state.list_actors() if a.actor_id == handle._actor_id]
    return info.restarts


def test_a_crashed_actor_restarts_with_its_original_arguments(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="rigd")
    actor = Actor.remote("rig-2")
    assert rigd.get(actor.count.remote()) == ("rig-2", 1)
    old_pid = rigd.get(actor.pid.remote())

    os.kill(old_pid, signal.SIGKILL)

    assert rigd.get(actor.count.remote(), timeout=30) == ("rig-2", 1)  # fresh state
    assert rigd.get(actor.pid.remote()) != old_pid
    assert _restarts(actor) == 1
    assert "restarting it (restart 1 of 3)" in caplog.text


def test_a_call_in_flight_when_the_actor_died_is_retried(tmp_path) -> None:
    actor = Actor.remote()

    result = rigd.get(actor.die_once.remote(str(tmp_path / "died")), timeout=30)

    assert result == "survived"
    assert _restarts(actor) == 1


def test_without_task_retries_the_call_in_flight_fails_but_the_actor_restarts(tmp_path) -> None:
    actor = Actor.options(max_task_retries=0).remote()

    with pytest.raises(ActorDiedError, match=r"was in flight and is not retried"):
        rigd.get(actor.die_once.remote(str(tmp_path / "died")), timeout=30)

    assert rigd.get(actor.count.remote(), timeout=30) == ("camera", 1)


def test_once_restarts_run_out_calls_fail_with_actor_died() -> None:
    actor = Actor.options(max_restarts=1, max_task_retries=0).remote()
    for _ in range(2):
        with pytest.raises(ActorDiedError):
            rigd.get(actor.die.remote(), timeout=30)

    with pytest.raises(ActorDiedError, match="SIGKILL"):
        rigd.get(actor.count.remote(), timeout=30)
    assert _restarts(actor) == 1


def test_unlimited_restarts() -> None:
    actor = Actor.options(max_restarts=-1, max_task_retries=0).remote()

    for _ in range(3):
        with pytest.raises(ActorDiedError):
            rigd.get(actor.die.remote(), timeout=30)

    assert rigd.get(actor.count.remote(), timeout=30) == ("camera", 1)
    assert _restarts(actor) == 3


def test_calls_sent_during_a_restart_wait_for_it() -> None:
    actor = Actor.remote()
    pid = rigd.get(actor.pid.remote())

    os.kill(pid, signal.SIGKILL)
    refs = [actor.count.remote() for _ in range(5)]

    assert [n for _, n in rigd.get(refs, timeout=30)] == [1, 2, 3, 4, 5]


def test_kill_with_no_restart_false_lets_the_actor_restart() -> None:
    actor = Actor.remote()
    pid = rigd.get(actor.pid.remote())

    rigd.kill(actor, no_restart=False)

    wait_until(lambda: not pid_alive(pid), what="the old process to die")
    assert rigd.get(actor.count.remote(), timeout=30) == ("camera", 1)


def test_kill_ends_a_restartable_actor_for_good() -> None:
    actor = Actor.remote()
    rigd.get(actor.pid.remote())

    rigd.kill(actor)

    with pytest.raises(ActorDiedError, match=r"killed with rigd\.kill\(\)"):
        rigd.get(actor.count.remote(), timeout=30)
    assert _restarts(actor) == 0


def test_a_constructor_error_is_not_restarted() -> None:
    @rigd.remote(max_restarts=5)
    class Broken:
        def __init__(self):
            raise RuntimeError("no camera")

        def ping(self):
            return "pong"

    actor = Broken.remote()

    with pytest.raises(ActorDiedError, match="no camera"):
        rigd.get(actor.ping.remote(), timeout=30)
    assert _restarts(actor) == 0
