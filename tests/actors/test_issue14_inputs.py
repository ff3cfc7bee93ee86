"""Regression tests for the small inputs of issue 14, each with real processes.

Each test names the input it pins. None sleeps to wait: calls are held at a
FIFO (the ``gate`` fixture) and released by the test, and every wait is
bounded.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

import rigd
from rigd.actors import _session
from rigd.actors._channel import HIGH_WATER, LOW_WATER
from rigd.exceptions import ActorDiedError
from tests.helpers import open_gate, pid_alive, wait_until


def _wait_gate(path: str) -> None:
    with open(path, "rb") as f:
        f.read(1)


@rigd.remote
class GatedCounter:
    """A counter whose constructor waits at a gate, so calls queue before it starts."""

    def __init__(self, gate: str | None = None) -> None:
        if gate is not None:
            _wait_gate(gate)
        self.value = 0

    def add(self, n: int, payload: bytes = b"") -> int:
        self.value += n
        return self.value

    def hold(self, gate: str) -> None:
        _wait_gate(gate)


# -- input 2: calls sent to an actor that has not started yet ---------------------


def test_a_thousand_calls_sent_before_the_actor_starts_all_complete(gate: str) -> None:
    counter = GatedCounter.remote(gate)
    refs = [counter.add.remote(1) for _ in range(1000)]

    open_gate(gate)

    assert rigd.get(refs, timeout=60) == list(range(1, 1001))


def test_the_runtime_still_answers_after_a_flood_of_queued_calls(gate: str) -> None:
    counter = GatedCounter.remote(gate)
    refs = [counter.add.remote(1) for _ in range(1000)]
    open_gate(gate)
    rigd.get(refs, timeout=60)

    other = GatedCounter.remote()

    assert rigd.get(other.add.remote(5), timeout=30) == 5


def test_a_cold_start_flood_of_5000_calls_completes_in_order(gate: str) -> None:
    # 5,000 calls of 1 KiB each (5 MiB: many socket buffers' worth) are
    # queued before the constructor returns; all must arrive, in order.
    counter = GatedCounter.remote(gate)
    payload = b"x" * 1024
    refs = [counter.add.remote(1, payload) for _ in range(5000)]

    open_gate(gate)

    assert rigd.get(refs, timeout=90) == list(range(1, 5001))


def test_a_caller_flooding_a_busy_actor_is_held_back_with_bounded_memory(gate: str) -> None:
    # 400 calls of 128 KiB (50 MiB) to an actor stuck in a call: the caller
    # must stop at HIGH_WATER queued bytes rather than buffer all of them.
    counter = GatedCounter.remote()
    rigd.get(counter.add.remote(0), timeout=30)
    blocked = counter.hold.remote(gate)
    payload = b"x" * (128 << 10)
    runtime = _session.get_runtime()
    channel = runtime.channel(counter._actor_id)
    most = [0]
    held_back = threading.Event()

    def watch() -> None:
        # Runs while the main thread is held back inside .remote().
        wait_until(lambda: channel.wbytes > LOW_WATER, timeout=60, what="the queue to fill")
        deadline = time.monotonic() + 60
        while channel.room is None and time.monotonic() < deadline:
            most[0] = max(most[0], channel.wbytes)
            time.sleep(0.005)
        most[0] = max(most[0], channel.wbytes)
        held_back.set()
        open_gate(gate)

    watcher = threading.Thread(target=watch)
    watcher.start()
    refs = [counter.add.remote(1, payload) for _ in range(400)]
    watcher.join(timeout=120)

    assert held_back.is_set()
    assert most[0] <= HIGH_WATER + len(payload) + 4096
    rigd.get(blocked, timeout=60)
    assert rigd.get(refs, timeout=120)[-1] == 400


# -- input 3: names are free when kill returns; never an ending actor --------------


@rigd.remote
class Lock:
    def ping(self) -> str:
        return "pong"

    def pid(self) -> int:
        return os.getpid()


def test_a_name_is_free_as_soon_as_kill_returns() -> None:
    for _ in range(8):
        actor = Lock.options(name="a").remote()
        rigd.get(actor.ping.remote(), timeout=30)

        rigd.kill(actor)

        with pytest.raises(ValueError, match="Failed to look up actor with name 'a'"):
            rigd.get_actor("a")
        again = Lock.options(name="a").remote()
        assert rigd.get(again.ping.remote(), timeout=30) == "pong"
        rigd.kill(again)


def test_get_if_exists_in_a_loop_that_drops_the_handle_never_returns_an_ending_actor() -> None:
    for _ in range(40):
        lock = Lock.options(name="the_lock", get_if_exists=True).remote()

        assert rigd.get(lock.ping.remote(), timeout=30) == "pong"


def test_get_actor_never_returns_an_actor_ending_by_exit_actor() -> None:
    @rigd.remote
    class Quitter:
        def quit(self) -> None:
            rigd.actor.exit_actor()

        def ping(self) -> str:
            return "pong"

    actor = Quitter.options(name="quitter").remote()
    rigd.get(actor.ping.remote(), timeout=30)

    with pytest.raises(ActorDiedError):
        rigd.get(actor.quit.remote(), timeout=30)

    with pytest.raises(ValueError, match="Failed to look up actor with name 'quitter'"):
        rigd.get_actor("quitter")


# -- input 4: actors whose handles are all gone end, calls in flight or not ----------


@rigd.remote
class Foo:
    def __init__(self, i: int) -> None:
        self.i = i

    def bar(self) -> tuple[int, int]:
        return self.i, os.getpid()


def test_actors_whose_only_handle_was_dropped_with_a_call_pending_end() -> None:
    refs = [Foo.remote(i).bar.remote() for i in range(8)]
    values = rigd.get(refs, timeout=60)
    del refs

    assert [i for i, _ in values] == list(range(8))
    pids = [pid for _, pid in values]
    # Far below the 30 s drain timeout an actor left alive would sit out.
    wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=15, what="every actor to end")


# -- input 5: unordered actors run a call at once past one waiting for its argument --


@rigd.remote
def _slow(gate: str) -> int:
    _wait_gate(gate)
    return 1


@rigd.remote(max_concurrency=2)
class ThreadedEcho:
    def echo(self, x: int) -> int:
        return x


@rigd.remote
class AsyncEcho:
    async def echo(self, x: int) -> int:
        return x


@pytest.mark.parametrize("echo_class", [ThreadedEcho, AsyncEcho], ids=["threaded", "async"])
def test_an_unordered_actor_runs_a_ready_call_past_one_waiting_for_its_argument(
    gate: str, echo_class: rigd.actor.ActorClass
) -> None:
    echo = echo_class.remote()
    first = echo.echo.remote(_slow.remote(gate))

    second = echo.echo.remote(rigd.put(2))

    assert rigd.get(second, timeout=30) == 2
    assert not first.done()
    open_gate(gate)
    assert rigd.get(first, timeout=30) == 1


def test_a_serial_actor_still_runs_calls_in_the_order_sent(gate: str) -> None:
    counter = GatedCounter.remote()
    first = counter.add.remote(_slow.remote(gate))
    second = counter.add.remote(10)

    open_gate(gate)

    assert rigd.get([first, second], timeout=30) == [1, 11]


# -- input 6: concurrency groups of async actors are isolated ------------------------


@rigd.remote(concurrency_groups={"g": 1})
class Grouped:
    async def blocker(self, gate: str) -> str:
        with open(gate + ".started", "w"):
            pass
        _wait_gate(gate)  # blocks its event loop, not the group's
        return "released"

    @rigd.method(concurrency_group="g")
    async def in_group(self) -> str:
        await asyncio.sleep(0)
        return "group g runs"

    async def ping(self) -> str:
        return "pong"


def test_a_blocked_default_group_does_not_stop_another_group_of_an_async_actor(
    gate: str,
) -> None:
    actor = Grouped.remote()
    rigd.get(actor.ping.remote(), timeout=30)
    blocked = actor.blocker.remote(gate)
    # The group's call is sent only once the default loop is blocked: the
    # actor must still read it and run it on group g's loop.
    wait_until(lambda: os.path.exists(gate + ".started"), 30, "the blocker to start")

    assert rigd.get(actor.in_group.remote(), timeout=30) == "group g runs"

    open_gate(gate)
    assert rigd.get(blocked, timeout=30) == "released"


def test_a_blocked_group_does_not_stop_the_default_group_of_an_async_actor(gate: str) -> None:
    actor = Grouped.remote()
    blocked = actor.blocker.options(concurrency_group="g").remote(gate)
    wait_until(lambda: os.path.exists(gate + ".started"), 30, "the blocker to start")

    assert rigd.get(actor.ping.remote(), timeout=30) == "pong"

    open_gate(gate)
    assert rigd.get(blocked, timeout=30) == "released"


# -- input 7: rigd.wait([]) -------------------------------------------------------------


def test_wait_on_an_empty_list_returns_two_empty_lists() -> None:
    rigd.init()

    assert rigd.wait([]) == ([], [])
    assert rigd.wait([], timeout=0) == ([], [])


# -- input 8: a method that returns a generator object ---------------------------------


@rigd.remote
class ReturnsGenerator:
    def numbers(self):  # type: ignore[no-untyped-def]
        return (x for x in range(3))

    def ping(self) -> str:
        return "pong"


@rigd.remote(max_concurrency=2)
class ThreadedReturnsGenerator:
    def numbers(self):  # type: ignore[no-untyped-def]
        return (x for x in range(3))


@pytest.mark.parametrize(
    "cls", [ReturnsGenerator, ThreadedReturnsGenerator], ids=["serial", "threaded"]
)
def test_a_method_returning_a_generator_object_fails_clearly(
    cls: rigd.actor.ActorClass,
) -> None:
    actor = cls.remote()

    # As in Ray: a generator object is a return value, and cannot be pickled.
    with pytest.raises(TypeError, match="cannot be sent back: cannot pickle 'generator'"):
        rigd.get(actor.numbers.remote(), timeout=30)


def test_an_actor_that_returned_a_generator_object_still_serves() -> None:
    actor = ReturnsGenerator.remote()
    with pytest.raises(TypeError):
        rigd.get(actor.numbers.remote(), timeout=30)

    assert rigd.get(actor.ping.remote(), timeout=30) == "pong"


def test_a_task_returning_a_generator_object_fails_clearly() -> None:
    @rigd.remote
    def numbers():  # type: ignore[no-untyped-def]
        return (x for x in range(3))

    with pytest.raises(TypeError, match="returned a generator object"):
        rigd.get(numbers.remote(), timeout=30)


# -- input 9: an async __rigd_shutdown__ is refused -------------------------------------


def test_an_async_shutdown_hook_is_refused_when_the_class_is_decorated() -> None:
    class AsyncHook:
        async def __rigd_shutdown__(self) -> None:
            pass

    with pytest.raises(
        TypeError,
        match=r"^AsyncHook.__rigd_shutdown__ must be a plain \(synchronous\) method",
    ):
        rigd.remote(AsyncHook)


# -- input 10: scheduling_strategy ---------------------------------------------------------


@pytest.mark.parametrize(
    "strategy",
    [
        "DEFAULT",
        "SPREAD",
        rigd.util.scheduling_strategies.NodeAffinitySchedulingStrategy(node_id="any", soft=True),
        rigd.util.scheduling_strategies.PlacementGroupSchedulingStrategy(placement_group=None),
    ],
    ids=["default", "spread", "node-affinity", "placement-group"],
)
def test_ray_scheduling_strategies_are_accepted_for_actors_and_tasks(strategy: object) -> None:
    @rigd.remote(scheduling_strategy=strategy)
    def task() -> str:
        return "ran"

    actor = Lock.options(scheduling_strategy=strategy).remote()

    assert rigd.get(task.remote(), timeout=30) == "ran"
    assert rigd.get(task.options(scheduling_strategy="SPREAD").remote(), timeout=30) == "ran"
    assert rigd.get(actor.ping.remote(), timeout=30) == "pong"


def test_an_unknown_scheduling_strategy_is_refused() -> None:
    with pytest.raises(ValueError, match="scheduling_strategy must be"):
        Lock.options(scheduling_strategy="PACK")
