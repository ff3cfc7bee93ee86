"""rigd.cancel: calls not yet started are dropped; running async calls are cancelled."""

from __future__ import annotations

import asyncio
import os

import pytest

import rigd
from rigd.exceptions import TaskCancelledError, TaskError
from tests.helpers import open_gate, wait_until


def wait_gate(path: str) -> str:
    open(path + ".started", "w").close()  # tells the test the call is running
    with open(path, "rb") as f:
        f.read(1)
    return "opened"


def wait_running(path: str) -> None:
    wait_until(lambda: os.path.exists(path + ".started"), what="the call to start")


def test_cancelling_a_running_async_call_cancels_it_in_the_actor(
    capfd: pytest.CaptureFixture[str],
) -> None:
    @rigd.remote
    class Actor:
        def __init__(self):
            self.started = asyncio.Event()

        async def f(self):
            self.started.set()
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                print("Actor task canceled.", flush=True)

        async def wait_started(self):
            await self.started.wait()

    actor = Actor.remote()
    ref = actor.f.remote()
    rigd.get(actor.wait_started.remote(), timeout=30)  # the guide sleeps here

    rigd.cancel(ref)

    try:
        rigd.get(ref, timeout=30)
    except TaskError:
        print("Object reference was cancelled.")
    assert capfd.readouterr().out.splitlines() == [
        "Actor task canceled.",
        "Object reference was cancelled.",
    ]


def test_a_queued_call_of_a_serial_actor_is_dropped(gate: str) -> None:
    @rigd.remote
    class Serial:
        def block(self, path):
            return wait_gate(path)

        def work(self):
            return "ran"

    actor = Serial.remote()
    blocked = actor.block.remote(gate)
    wait_running(gate)
    queued = actor.work.remote()
    after = actor.work.remote()

    rigd.cancel(queued)
    open_gate(gate)

    assert rigd.get(blocked, timeout=30) == "opened"
    with pytest.raises(TaskCancelledError, match=r"the call Serial\.work was cancelled"):
        rigd.get(queued, timeout=30)
    assert rigd.get(after, timeout=30) == "ran"


def test_a_running_call_of_a_serial_actor_is_not_interrupted(gate: str) -> None:
    @rigd.remote
    class Serial:
        def block(self, path):
            return wait_gate(path)

    actor = Serial.remote()
    running = actor.block.remote(gate)
    wait_running(gate)

    rigd.cancel(running)
    open_gate(gate)

    assert rigd.get(running, timeout=30) == "opened"


def test_a_queued_call_of_a_threaded_actor_is_dropped(gate: str) -> None:
    @rigd.remote
    class Threaded:
        def block(self, path):
            return wait_gate(path)

        def work(self):
            return "ran"

    actor = Threaded.options(max_concurrency=1, concurrency_groups={"other": 1}).remote()
    blocked = actor.block.remote(gate)
    queued = actor.work.remote()
    free = actor.work.options(concurrency_group="other").remote()
    assert rigd.get(free, timeout=30) == "ran"  # the actor has seen everything sent before

    rigd.cancel(queued)

    # Dropped while the blocking call still runs (cancel itself does not wait).
    assert rigd.wait([queued], timeout=30) == ([queued], [])
    with pytest.raises(TaskCancelledError):
        rigd.get(queued)
    open_gate(gate)
    assert rigd.get(blocked, timeout=30) == "opened"


def test_a_call_still_waiting_for_its_argument_is_dropped_at_once(gate: str) -> None:
    @rigd.remote
    class Serial:
        def block(self, path):
            return wait_gate(path)

        def echo(self, value):
            return value

    blocker = Serial.remote()
    other = Serial.remote()
    pending = blocker.block.remote(gate)
    waiting = other.echo.remote(pending)

    rigd.cancel(waiting)

    with pytest.raises(TaskCancelledError):
        rigd.get(waiting, timeout=0)
    open_gate(gate)
    assert rigd.get(pending, timeout=30) == "opened"


def test_a_queued_task_is_dropped_and_a_running_one_is_interrupted(gate: str) -> None:
    @rigd.remote(num_cpus=2)
    def hold(path):
        return wait_gate(path)

    @rigd.remote(num_cpus=2)
    def quick():
        return "ran"

    rigd.init(num_cpus=2)
    running = hold.remote(gate)
    wait_running(gate)
    queued = quick.remote()
    assert rigd.wait([queued], timeout=0.2) == ([], [queued])

    rigd.cancel(queued)
    rigd.cancel(running)

    with pytest.raises(TaskCancelledError, match=r"the task quick was cancelled"):
        rigd.get(queued, timeout=30)
    # As in Ray: KeyboardInterrupt in the task, TaskCancelledError for the caller.
    with pytest.raises(TaskCancelledError, match=r"the task hold was cancelled"):
        rigd.get(running, timeout=30)


def test_cancelling_a_finished_call_changes_nothing() -> None:
    @rigd.remote
    def one():
        return 1

    ref = one.remote()
    assert rigd.get(ref, timeout=30) == 1

    rigd.cancel(ref)

    assert rigd.get(ref) == 1


def test_cancel_of_something_not_a_ref_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"rigd\.cancel takes an ObjectRef"):
        rigd.cancel("ref")  # type: ignore[arg-type]
