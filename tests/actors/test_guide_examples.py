"""The examples of Ray's actor guide, with ``import rigd`` for ``import ray``.

Sections: Basic Usage, Key Behaviors, Specifying Resource Requirements,
Passing Actor Handles, Named Actors, Terminating Actors, Task Execution
Order. Each test runs the guide's code as written and checks what it prints.
"""

from __future__ import annotations

import os
import tempfile
import time

import pytest

import rigd
from tests.helpers import pid_alive, wait_until


@rigd.remote
class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1
        return self.value

    def get_counter(self):
        return self.value


def test_basic_usage_prints_one(capsys: pytest.CaptureFixture[str]) -> None:
    # Create an actor from this class.
    counter = Counter.remote()

    # Call the actor.
    obj_ref = counter.increment.remote()
    print(rigd.get(obj_ref))

    assert capsys.readouterr().out == "1\n"


def test_methods_on_different_actors_run_in_parallel(capsys: pytest.CaptureFixture[str]) -> None:
    counters = [Counter.remote() for _ in range(10)]

    results = rigd.get([c.increment.remote() for c in counters])
    print(results)

    assert capsys.readouterr().out == "[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"


def test_methods_on_one_actor_run_serially_and_share_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    counters = [Counter.remote() for _ in range(10)]
    rigd.get([c.increment.remote() for c in counters])

    results = rigd.get([counters[0].increment.remote() for _ in range(5)])
    print(results)

    assert capsys.readouterr().out == "[2, 3, 4, 5, 6]\n"


def test_resource_requirements_are_accepted_and_accounted() -> None:
    @rigd.remote(num_cpus=2, num_gpus=0.5)
    class Actor:
        pass

    rigd.init(num_cpus=2)

    # Defining it is fine; starting it on a machine without a GPU is not.
    with pytest.raises(rigd.exceptions.ResourceUnavailableError, match=r"num_gpus=0\.5"):
        Actor.remote()
    assert rigd.get(Actor.options(num_gpus=0).remote().__rigd_terminate__.remote()) is None


def test_passing_actor_handles_to_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    @rigd.remote
    def f(counter):
        for _ in range(10):
            time.sleep(0.01)
            counter.increment.remote()

    counter = Counter.remote()

    # Start some tasks that use the actor.
    refs = [f.remote(counter) for _ in range(3)]

    # Print the counter value as it grows, as the guide does.
    for _ in range(3):
        time.sleep(0.01)
        print(rigd.get(counter.get_counter.remote()))
    rigd.get(refs)
    wait_until(lambda: rigd.get(counter.get_counter.remote()) == 30, what="30 increments")

    printed = [int(line) for line in capsys.readouterr().out.split()]
    assert printed == sorted(printed)
    assert all(0 <= v <= 30 for v in printed)


def test_named_actor_is_found_by_name() -> None:
    counter = Counter.options(name="some_name").remote()
    rigd.get(counter.increment.remote())

    counter = rigd.get_actor("some_name")

    assert rigd.get(counter.get_counter.remote()) == 1


def test_get_or_create_returns_the_existing_actor() -> None:
    @rigd.remote
    class Greeter:
        def __init__(self, value):
            self.value = value

        def say_hello(self):
            return self.value

    # Actor `g1` doesn't yet exist, so it is created with the given args.
    a = Greeter.options(name="g1", get_if_exists=True).remote("Old Greeting")
    assert rigd.get(a.say_hello.remote()) == "Old Greeting"

    # Actor `g1` already exists, so it is returned (new args are ignored).
    b = Greeter.options(name="g1", get_if_exists=True).remote("New Greeting")
    assert rigd.get(b.say_hello.remote()) == "Old Greeting"


def test_detached_actor_outlives_its_handles() -> None:
    counter = Counter.options(name="CounterActor", lifetime="detached").remote()
    rigd.get(counter.increment.remote())
    pid = _pid_of(counter)
    del counter

    counter = rigd.get_actor("CounterActor")

    assert rigd.get(counter.get_counter.remote()) == 1
    assert pid_alive(pid)


def _pid_of(handle: rigd.actor.ActorHandle) -> int:
    (info,) = [a for a in rigd.state.list_actors() if a.actor_id == handle._actor_id]
    assert info.pid is not None
    return info.pid


def test_kill_ends_the_actor_at_once_and_fails_later_calls() -> None:
    @rigd.remote
    class Actor:
        def ping(self):
            return "pong"

    actor_handle = Actor.remote()
    assert rigd.get(actor_handle.ping.remote()) == "pong"

    rigd.kill(actor_handle)

    with pytest.raises(rigd.exceptions.ActorDiedError, match=r"killed with rigd\.kill\(\)"):
        rigd.get(actor_handle.ping.remote(), timeout=10)


def test_exit_actor_inside_a_method_ends_the_actor() -> None:
    @rigd.remote
    class Actor:
        def exit(self):
            rigd.actor.exit_actor()

        def ping(self):
            return "pong"

    actor = Actor.remote()
    assert rigd.get(actor.ping.remote()) == "pong"

    exit_ref = actor.exit.remote()

    with pytest.raises(rigd.exceptions.ActorDiedError, match="exit_actor"):
        rigd.get(exit_ref, timeout=10)
    with pytest.raises(rigd.exceptions.ActorDiedError, match="exit_actor"):
        rigd.get(actor.ping.remote(), timeout=10)


@rigd.remote
class FileProcessorActor:
    def __init__(self):
        self.temp_file = tempfile.NamedTemporaryFile(delete=False)  # noqa: SIM115
        self.temp_file.write(b"processing data")
        self.temp_file.flush()

    def __rigd_shutdown__(self):
        # Clean up temporary file
        if hasattr(self, "temp_file"):
            self.temp_file.close()
            os.unlink(self.temp_file.name)

    def process(self):
        return "done"

    def path(self):
        return self.temp_file.name


def test_shutdown_hook_runs_when_the_last_handle_goes() -> None:
    actor = FileProcessorActor.remote()
    assert rigd.get(actor.process.remote()) == "done"
    path = rigd.get(actor.path.remote())
    assert os.path.exists(path)

    del actor  # __rigd_shutdown__() is called automatically

    wait_until(lambda: not os.path.exists(path), what="__rigd_shutdown__ to remove the file")


def test_shutdown_hook_runs_on_rigd_terminate() -> None:
    actor = FileProcessorActor.remote()
    path = rigd.get(actor.path.remote())

    rigd.get(actor.__rigd_terminate__.remote(), timeout=10)

    assert not os.path.exists(path)
    with pytest.raises(rigd.exceptions.ActorDiedError, match="terminated gracefully"):
        rigd.get(actor.process.remote(), timeout=10)


def test_shutdown_hook_does_not_run_on_kill() -> None:
    actor = FileProcessorActor.remote()
    path = rigd.get(actor.path.remote())

    rigd.kill(actor)
    with pytest.raises(rigd.exceptions.ActorDiedError):
        rigd.get(actor.process.remote(), timeout=10)

    assert os.path.exists(path)
    os.unlink(path)


def test_task_execution_order_from_one_submitter(capsys: pytest.CaptureFixture[str]) -> None:
    @rigd.remote
    class Counter:
        def __init__(self):
            self.value = 0

        def add(self, addition):
            self.value += addition
            return self.value

    counter = Counter.remote()

    # For tasks from the same submitter, they are executed according to submission order.
    value0 = counter.add.remote(1)
    value1 = counter.add.remote(2)

    print(rigd.get(value0))
    print(rigd.get(value1))

    assert capsys.readouterr().out == "1\n3\n"
