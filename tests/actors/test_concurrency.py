"""Async actors, threaded actors and concurrency groups (Ray's guide, with rigd)."""

from __future__ import annotations

import asyncio
import threading

import pytest

import rigd


def _lines(capfd: pytest.CaptureFixture[str]) -> list[str]:
    return capfd.readouterr().out.splitlines()


def test_async_actor_runs_its_coroutines_concurrently(capfd: pytest.CaptureFixture[str]) -> None:
    @rigd.remote
    class AsyncActor:
        def __init__(self, expected_num_tasks: int):
            self._event = asyncio.Event()
            self._curr_num_tasks = 0
            self._expected_num_tasks = expected_num_tasks

        async def run_concurrent(self):
            self._curr_num_tasks += 1
            if self._curr_num_tasks == self._expected_num_tasks:
                print("All coroutines are executing concurrently, unblocking.", flush=True)
                self._event.set()
            else:
                print("Waiting for other coroutines to start.", flush=True)
                await self._event.wait()
            print("All coroutines ran concurrently.", flush=True)

    actor = AsyncActor.remote(4)
    refs = [actor.run_concurrent.remote() for _ in range(4)]

    rigd.get(refs, timeout=30)

    lines = _lines(capfd)
    assert lines.count("Waiting for other coroutines to start.") == 3
    assert lines.count("All coroutines are executing concurrently, unblocking.") == 1
    assert lines.count("All coroutines ran concurrently.") == 4


def test_object_refs_are_awaitable_in_a_driver() -> None:
    @rigd.remote
    def some_task():
        return 1

    async def await_obj_ref():
        first = await some_task.remote()
        done, _ = await asyncio.wait([some_task.remote()])
        gathered = await asyncio.gather(some_task.remote(), some_task.remote())
        return first, [t.result() for t in done], gathered

    assert asyncio.run(await_obj_ref()) == (1, [1], [1, 1])


def test_max_concurrency_bounds_an_async_actor(capfd: pytest.CaptureFixture[str]) -> None:
    @rigd.remote
    class AsyncActor:
        def __init__(self, batch_size: int):
            self._event = asyncio.Event()
            self._curr_tasks = 0
            self._batch_size = batch_size
            self.peak = 0

        async def run_task(self):
            print("Started task", flush=True)
            self._curr_tasks += 1
            self.peak = max(self.peak, self._curr_tasks)
            if self._curr_tasks == self._batch_size:
                self._event.set()
            else:
                await self._event.wait()
                self._event.clear()
                self._curr_tasks = 0
            print("Finished task", flush=True)

        async def get_peak(self):
            return self.peak

    actor = AsyncActor.options(max_concurrency=2).remote(2)

    # Only 2 tasks will run concurrently.
    rigd.get([actor.run_task.remote() for _ in range(8)], timeout=30)

    assert rigd.get(actor.get_peak.remote()) == 2
    lines = _lines(capfd)
    assert lines.count("Started task") == 8
    assert lines.count("Finished task") == 8


def test_a_blocking_get_inside_an_async_method_is_refused() -> None:
    @rigd.remote
    class Helper:
        def value(self):
            return 7

    @rigd.remote
    class AsyncActor:
        def __init__(self, helper):
            self.helper = helper

        async def blocking(self):
            return rigd.get(self.helper.value.remote())

        async def awaiting(self):
            return await self.helper.value.remote()

    actor = AsyncActor.remote(Helper.remote())

    with pytest.raises(RuntimeError, match=r"rigd\.get blocks.*use `await ref`"):
        rigd.get(actor.blocking.remote(), timeout=30)
    assert rigd.get(actor.awaiting.remote(), timeout=30) == 7


def test_threaded_actor_runs_calls_on_a_pool_of_threads(
    capfd: pytest.CaptureFixture[str],
) -> None:
    @rigd.remote
    class ThreadedActor:
        def __init__(self):
            self.barrier = threading.Barrier(2, timeout=30)

        def task_1(self):
            self.barrier.wait()  # returns only if task_2 runs at the same time
            print("I'm running in a thread!", flush=True)

        def task_2(self):
            self.barrier.wait()
            print("I'm running in another thread!", flush=True)

    a = ThreadedActor.options(max_concurrency=2).remote()

    rigd.get([a.task_1.remote(), a.task_2.remote()], timeout=30)

    # Two threads print at once, so their lines may interleave.
    out = capfd.readouterr().out
    assert "I'm running in a thread!" in out
    assert "I'm running in another thread!" in out


def test_a_class_with_any_async_method_is_an_async_actor() -> None:
    @rigd.remote
    class Mixed:
        def sync_method(self):
            return threading.current_thread().name

        async def async_method(self):
            return threading.current_thread().name

    actor = Mixed.options(max_concurrency=4).remote()

    names = rigd.get([actor.sync_method.remote(), actor.async_method.remote()], timeout=30)

    # Both run on the actor's event loop, one thread: not on a pool of 4.
    assert names[0] == names[1]


@rigd.remote(concurrency_groups={"io": 2, "compute": 4})
class GroupedActor:
    def __init__(self):
        pass

    @rigd.method(concurrency_group="io")
    def f1(self):
        return threading.current_thread().name

    @rigd.method(concurrency_group="io")
    def f2(self):
        return threading.current_thread().name

    @rigd.method(concurrency_group="compute")
    def f3(self):
        return threading.current_thread().name

    def f5(self):
        return threading.current_thread().name  # Executed in the default group


def test_methods_run_in_their_concurrency_group() -> None:
    a = GroupedActor.remote()

    names = rigd.get([a.f1.remote(), a.f2.remote(), a.f3.remote(), a.f5.remote()], timeout=30)

    assert [n.rsplit("_", 1)[0] for n in names] == [
        "rigd-actor-io",
        "rigd-actor-io",
        "rigd-actor-compute",
        "rigd-actor-default",
    ]


def test_a_call_can_be_sent_to_another_group() -> None:
    a = GroupedActor.remote()

    # Executed in the "io" group (as defined in the actor class).
    default = rigd.get(a.f2.options().remote(), timeout=30)
    # Executed in the "compute" group.
    moved = rigd.get(a.f2.options(concurrency_group="compute").remote(), timeout=30)

    assert default.startswith("rigd-actor-io")
    assert moved.startswith("rigd-actor-compute")


def test_a_concurrency_group_bounds_its_calls_in_an_async_actor() -> None:
    @rigd.remote(concurrency_groups={"io": 2})
    class AsyncIOActor:
        def __init__(self):
            self.active = 0
            self.peak = 0

        @rigd.method(concurrency_group="io")
        async def f1(self):
            self.active += 1
            self.peak = max(self.peak, self.active)
            await asyncio.sleep(0.02)  # the work of an I/O call
            self.active -= 1

        async def peak_seen(self):
            return self.peak

    actor = AsyncIOActor.options(max_concurrency=10).remote()

    rigd.get([actor.f1.remote() for _ in range(6)], timeout=30)

    assert rigd.get(actor.peak_seen.remote()) == 2


def test_a_method_naming_an_undeclared_group_fails_at_definition() -> None:
    class Undeclared:
        @rigd.method(concurrency_group="gpu")
        def f(self):
            return 1

    with pytest.raises(
        ValueError,
        match=r"uses concurrency group 'gpu', which Undeclared does not "
        r"declare; declare it with @rigd\.remote\(concurrency_groups=\{'gpu': 1\}\)",
    ):
        rigd.remote(Undeclared)


def test_an_override_naming_an_unknown_group_fails_at_options_time() -> None:
    a = GroupedActor.remote()

    with pytest.raises(
        ValueError,
        match=r"^GroupedActor\.f1 has no concurrency group 'disk'; the "
        r"actor's groups are: compute, io$",
    ):
        a.f1.options(concurrency_group="disk")


def test_an_unknown_method_option_lists_the_valid_ones() -> None:
    with pytest.raises(TypeError, match=r"unknown method option 'group'; valid options are: "):
        rigd.method(group="io")
