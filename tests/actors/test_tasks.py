"""Remote functions: tasks on a pool of worker processes."""

from __future__ import annotations

import itertools
import os
import signal
import time

import numpy as np
import pytest

import rigd
from rigd.exceptions import TaskError, WorkerCrashedError


@rigd.remote
def square(x):
    return x * x


@rigd.remote
class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1
        return self.value


def test_tasks_return_their_results() -> None:
    refs = [square.remote(i) for i in range(10)]

    assert rigd.get(refs) == [i * i for i in range(10)]


def test_task_arguments_can_be_refs_of_other_tasks() -> None:
    assert rigd.get(square.remote(square.remote(3))) == 81


def test_a_task_error_is_the_original_class() -> None:
    @rigd.remote
    def fails():
        raise KeyError("exposure")

    with pytest.raises(KeyError) as info:
        rigd.get(fails.remote())

    assert isinstance(info.value, TaskError)


def test_tasks_return_large_arrays_bit_for_bit() -> None:
    @rigd.remote
    def make(k):
        return np.full((1024, 1024), k, dtype=np.uint16)

    frames = rigd.get([make.remote(k) for k in range(4)])

    assert [int(f[0, 0]) for f in frames] == [0, 1, 2, 3]
    assert all((f == k).all() for k, f in enumerate(frames))


def test_an_actor_handle_passed_to_tasks_reaches_the_same_actor() -> None:
    @rigd.remote
    def bump(counter, times):
        return rigd.get([counter.increment.remote() for _ in range(times)])[-1]

    counter = Counter.remote()

    rigd.get([bump.remote(counter, 5) for _ in range(3)])

    assert rigd.get(counter.increment.remote()) == 16


def test_tasks_run_in_parallel_on_separate_cpus(tmp_path) -> None:
    @rigd.remote
    def rendezvous(mine, theirs):
        # Each task announces itself and waits for the other: run one at a
        # time, the first would give up.
        import os
        import time

        open(mine, "w").close()
        deadline = time.monotonic() + 20
        while not os.path.exists(theirs):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    rigd.init(num_cpus=2)
    a, b = str(tmp_path / "a"), str(tmp_path / "b")

    refs = [rendezvous.remote(a, b), rendezvous.remote(b, a)]

    assert rigd.get(refs, timeout=30) == [True, True]


def test_tasks_needing_all_cpus_run_one_at_a_time() -> None:
    @rigd.remote(num_cpus=2)
    def interval():
        start = time.monotonic()
        time.sleep(0.05)
        return start, time.monotonic()

    rigd.init(num_cpus=2)

    spans = sorted(rigd.get([interval.remote() for _ in range(3)], timeout=30))

    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans))


def test_nested_tasks_do_not_deadlock_the_pool() -> None:
    @rigd.remote
    def outer(x):
        return rigd.get(square.remote(x)) + 1

    rigd.init(num_cpus=2)

    assert rigd.get([outer.remote(i) for i in range(4)], timeout=30) == [1, 2, 5, 10]


def test_a_task_whose_worker_dies_is_retried(tmp_path) -> None:
    marker = tmp_path / "crashed-once"

    @rigd.remote(max_retries=1)
    def crash_once(path):
        import os
        import signal

        if not os.path.exists(path):
            open(path, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return "survived"

    assert rigd.get(crash_once.remote(str(marker)), timeout=30) == "survived"


def test_a_task_whose_worker_dies_past_its_retries_fails_clearly() -> None:
    @rigd.remote(max_retries=0)
    def crash():
        os.kill(os.getpid(), signal.SIGKILL)

    with pytest.raises(WorkerCrashedError, match=r"the worker running task crash died: .*SIGKILL"):
        rigd.get(crash.remote(), timeout=30)


def test_a_task_asking_for_more_cpus_than_exist_fails_clearly() -> None:
    rigd.init(num_cpus=2)

    with pytest.raises(rigd.exceptions.ResourceUnavailableError, match=r"num_cpus=3"):
        rigd.get(square.options(num_cpus=3).remote(2), timeout=10)


def test_concurrency_groups_on_a_function_are_rejected() -> None:
    with pytest.raises(TypeError, match="concurrency groups apply to actors"):
        square.options(concurrency_groups={"io": 1})
