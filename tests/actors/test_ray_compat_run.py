"""Regression tests for what running Ray's own actor test files found (issue 22).

Each test pins one incompatibility that ``bench/ray_compat.py`` showed, in
rigd's own words (Ray's tests are not copied here). Real processes; every
wait is bounded.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import rigd
from rigd.exceptions import (
    ActorDiedError,
    ObjectLostError,
    OwnerDiedError,
    RayActorError,
    RayError,
    RayTaskError,
    RigdError,
    TaskCancelledError,
    TaskError,
)
from tests.helpers import pid_alive, wait_until


@rigd.remote
class Pid:
    def pid(self) -> int:
        return os.getpid()

    def fail(self) -> None:
        raise KeyError("no such key")


@rigd.remote
def touch(actor: object) -> int:
    return 1


@rigd.remote
def call_pid(actor: rigd.actor.ActorHandle[Pid]) -> int:
    return rigd.get(actor.pid.remote(), timeout=60)


# -- a handle passed to a task --------------------------------------------------------------


@pytest.mark.parametrize("task", [touch, call_pid], ids=["unused", "called"])
def test_an_actor_ends_once_a_task_that_was_given_its_last_handle_finishes(
    task: Any,
) -> None:
    # Checking the arguments at the call site pickled the handle once more,
    # lending it to a borrower that never came: the actor never ended.
    actor = Pid.remote()
    pid = rigd.get(actor.pid.remote(), timeout=60)
    ref = task.remote(actor)
    del actor
    assert rigd.get(ref, timeout=60) in (1, pid)
    wait_until(lambda: not pid_alive(pid), timeout=30, what="the actor to end")


def test_an_unpicklable_argument_next_to_a_handle_does_not_keep_the_actor() -> None:
    actor = Pid.remote()
    pid = rigd.get(actor.pid.remote(), timeout=60)
    with pytest.raises(TypeError, match="cannot be serialized"):
        touch.remote((actor, threading.Lock()))
    del actor
    wait_until(lambda: not pid_alive(pid), timeout=30, what="the actor to end")


# -- Ray's exception names ------------------------------------------------------------------


def test_rays_exception_names_catch_rigds_errors() -> None:
    assert RayError is RigdError
    assert RayTaskError is TaskError
    assert RayActorError is ActorDiedError
    assert issubclass(OwnerDiedError, ObjectLostError)
    assert issubclass(ObjectLostError, RayError)
    actor = Pid.remote()
    with pytest.raises(RayTaskError) as info:
        rigd.get(actor.fail.remote(), timeout=60)
    assert isinstance(info.value, KeyError)
    rigd.kill(actor)
    with pytest.raises(RayActorError):
        rigd.get(actor.pid.remote(), timeout=60)


# -- __ray_terminate__, lifetimes, init's facts ---------------------------------------------


def test_ray_terminate_ends_the_actor_gracefully_and_runs_atexit(tmp_path: object) -> None:
    marker = os.path.join(str(tmp_path), "atexit")

    @rigd.remote
    class Leaves:
        def __init__(self, path: str) -> None:
            import atexit

            atexit.register(lambda: open(path, "w").close())

        def pid(self) -> int:
            return os.getpid()

    actor = Leaves.remote(marker)
    pid = rigd.get(actor.pid.remote(), timeout=60)
    rigd.wait([actor.__ray_terminate__.remote()], timeout=60)
    wait_until(lambda: not pid_alive(pid), timeout=30, what="the actor to end")
    assert os.path.exists(marker)
    with pytest.raises(ActorDiedError):
        rigd.get(actor.pid.remote(), timeout=60)


def test_ray_1x_non_detached_spelling_is_accepted() -> None:
    cls: Any = Pid
    actor = cls.options(lifetime="non-detached").remote()
    assert rigd.get(actor.pid.remote(), timeout=60) > 0
    assert cls.options(lifetime="non-detached")._options.lifetime == "non_detached"
    with pytest.raises(ValueError, match="lifetime must be"):
        cls.options(lifetime="forever")


def test_init_reports_an_address_as_ray_does() -> None:
    facts = rigd.init(num_cpus=1)
    assert facts["address"] == facts["session_dir"]
    assert os.path.isdir(facts["address"])


# -- cancelling a borrowed ref ----------------------------------------------------------------


def _hold_at(path: str) -> str:
    open(path + ".started", "w").close()
    with open(path, "rb") as f:
        f.read(1)
    return "opened"


@rigd.remote
def held(path: str) -> str:
    return _hold_at(path)


@rigd.remote
def start_held(path: str) -> list[rigd.ObjectRef[str]]:
    return [held.remote(path)]


@pytest.mark.parametrize("force", [False, True])
def test_cancel_of_a_borrowed_ref_reaches_the_process_that_owns_it(gate: str, force: bool) -> None:
    # The ref came nested in a task's result: the task's worker owns it, and
    # rigd.cancel here did nothing (the get then timed out).
    rigd.init(num_cpus=2)
    [inner] = rigd.get(start_held.remote(gate), timeout=60)
    wait_until(lambda: os.path.exists(gate + ".started"), what="the inner task to start")

    rigd.cancel(inner, force=force)

    with pytest.raises(TaskCancelledError):
        rigd.get(inner, timeout=60)


# -- an async actor's constructor and its event loop ------------------------------------------


@rigd.remote(concurrency_groups={"io": 1})
class LoopSeer:
    def __init__(self) -> None:
        self.loop = asyncio.get_event_loop()

    def sync_sees_it(self) -> bool:
        return asyncio.get_event_loop() is self.loop

    async def async_sees_it(self) -> bool:
        return asyncio.get_running_loop() is self.loop

    @rigd.method(concurrency_group="io")
    async def io_sees_another(self) -> bool:
        return asyncio.get_running_loop() is not self.loop


def test_an_async_actors_constructor_sees_the_loop_its_default_calls_run_on() -> None:
    # The constructor ran before the loop existed: asyncio.get_event_loop()
    # there made a loop no call ever ran on.
    actor = LoopSeer.remote()
    assert rigd.get(actor.sync_sees_it.remote(), timeout=60) is True
    assert rigd.get(actor.async_sees_it.remote(), timeout=60) is True
    assert rigd.get(actor.io_sees_another.remote(), timeout=60) is True


# -- a task iterating a generator task lends its CPU ---------------------------------------


@rigd.remote
def count_to(n: int):  # type: ignore[no-untyped-def]
    yield from range(n)


@rigd.remote
def read_counts(n: int) -> list[int]:
    return [rigd.get(ref, timeout=60) for ref in count_to.remote(n)]


def test_a_task_reading_a_generator_task_does_not_hold_the_only_cpu() -> None:
    # Waiting for the next item kept the CPU: with one CPU, the generator task
    # never started and the reading task waited for ever.
    rigd.init(num_cpus=1)
    assert rigd.get(read_counts.remote(3), timeout=60) == [0, 1, 2]


# -- a retried generator task does not send its items twice ------------------------------


@rigd.remote(retry_exceptions=[ValueError], max_retries=2)
def fails_once_at_3(marker: str):  # type: ignore[no-untyped-def]
    for i in range(5):
        if i == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            raise ValueError("once")
        yield i


def test_a_retried_generator_task_sends_each_item_once(tmp_path: object) -> None:
    # The retry ran the generator again from its start and sent 0, 1, 2 again.
    marker = os.path.join(str(tmp_path), "failed")
    items = [rigd.get(ref, timeout=60) for ref in fails_once_at_3.remote(marker)]
    assert items == [0, 1, 2, 3, 4]
    assert os.path.exists(marker)


# -- an instance attribute does not hide a method -----------------------------------------


@rigd.remote
class Shadowed:
    def __init__(self) -> None:
        self.flag = True

    def flag(self) -> bool:  # type: ignore[no-redef]
        return self.flag  # type: ignore[return-value]

    async def clear(self) -> None:
        self.flag = False  # type: ignore[assignment,method-assign]


def test_a_method_is_found_on_the_class_even_when_an_attribute_shares_its_name() -> None:
    # The worker looked the method up on the instance, found the bool and
    # failed with "'bool' object is not callable"; Ray calls the class's method.
    actor = Shadowed.remote()
    assert rigd.get(actor.flag.remote(), timeout=60) is True
    rigd.get(actor.clear.remote(), timeout=60)
    assert rigd.get(actor.flag.remote(), timeout=60) is False


@rigd.remote(max_retries=1)
def dies_once_at_3(marker: str):  # type: ignore[no-untyped-def]
    for i in range(5):
        if i == 3 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(1)
        yield i


def test_a_generator_task_whose_worker_died_is_retried_without_repeating_items(
    tmp_path: object,
) -> None:
    # Streaming tasks were never retried (a retry would repeat the items).
    marker = os.path.join(str(tmp_path), "died")
    items = [rigd.get(ref, timeout=60) for ref in dies_once_at_3.remote(marker)]
    assert items == [0, 1, 2, 3, 4]
    assert os.path.exists(marker)


@rigd.remote(num_cpus=2)
class TwoCpus:
    def ping(self) -> str:
        return "pong"


def test_cluster_and_available_resources_count_what_live_actors_hold() -> None:
    rigd.init(num_cpus=3)
    assert rigd.cluster_resources() == {"CPU": 3.0}
    assert rigd.available_resources() == {"CPU": 3.0}

    actor = TwoCpus.remote()
    rigd.get(actor.ping.remote(), timeout=30)
    assert rigd.available_resources() == {"CPU": 1.0}
    full = TwoCpus.options(num_cpus=1).remote()
    rigd.get(full.ping.remote(), timeout=30)
    assert "CPU" not in rigd.available_resources()  # nothing free: left out, as in Ray

    rigd.kill(actor)
    rigd.kill(full)
    wait_until(lambda: rigd.available_resources() == {"CPU": 3.0}, what="the CPUs to return")
    assert rigd.cluster_resources() == {"CPU": 3.0}


@rigd.remote
def _node_id() -> str:
    return rigd.get_runtime_context().get_node_id()


def test_nodes_lists_this_machine_with_rays_keys_and_the_sessions_resources() -> None:
    rigd.init(num_cpus=3)

    (node,) = rigd.nodes()

    assert node["Alive"] is True
    assert node["alive"] is True
    assert node["NodeID"] == rigd.get(_node_id.remote(), timeout=30)
    assert node["Resources"] == {"CPU": 3.0}
    assert node["NodeManagerHostname"] == socket.gethostname()


def test_a_killed_actors_error_carries_rays_sentence_too() -> None:
    actor = Pid.remote()
    rigd.get(actor.pid.remote(), timeout=30)

    rigd.kill(actor)

    with pytest.raises(ActorDiedError) as info:
        rigd.get(actor.pid.remote(), timeout=30)
    assert "killed with rigd.kill()" in str(info.value)
    assert "The actor is dead because it was killed by `ray.kill`" in str(info.value)


_SECOND_DRIVER = """
import rigd

facts = rigd.init(address={address!r}, namespace="lab")

@rigd.remote
class Pinger:
    def ping(self):
        return "pong from the other driver"

kept = Pinger.options(name="kept", lifetime="detached").remote()
gone = Pinger.options(name="gone").remote()
print(rigd.get(kept.ping.remote(), timeout=30), rigd.get(gone.ping.remote(), timeout=30))
print(facts["num_cpus"])
"""


def test_a_second_driver_joins_the_session_by_the_address_init_returned() -> None:
    info = rigd.init(namespace="lab", num_cpus=2)

    out = subprocess.run(
        [sys.executable, "-c", _SECOND_DRIVER.format(address=info["address"])],
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[1] == "2.0"  # the session's CPUs, as its starter set them
    kept = rigd.get_actor("kept")  # detached: it outlives the driver that made it
    assert rigd.get(kept.ping.remote(), timeout=30) == "pong from the other driver"

    def gone() -> bool:
        try:
            rigd.get_actor("gone")
        except ValueError:
            return True
        return False

    wait_until(gone, timeout=30, what="the other driver's actor to end with it")


def test_an_address_that_is_no_live_session_is_refused_and_starts_nothing(tmp_path: Path) -> None:
    not_a_session = tmp_path / "rigd-not-a-session"
    not_a_session.mkdir()

    with pytest.raises(ValueError, match=r"a live session's directory"):
        rigd.init(address=str(not_a_session))
    assert not rigd.is_initialized()
