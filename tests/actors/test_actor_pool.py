"""``rigd.util.ActorPool``, Ray's ``ray.util.ActorPool``, over real actor processes.

The cases follow Ray's documented behaviour of the pool: results in order
from ``map``, as they finish from ``map_unordered``, values queued while
every actor is busy, ``push``/``pop_idle``, ``StopIteration`` and
``TimeoutError``. Calls that must stay unfinished wait at a FIFO (``gate``).
"""

from __future__ import annotations

import pytest

import rigd
from rigd.util import ActorPool
from tests.helpers import open_gate


@rigd.remote
class Doubler:
    def double(self, v: int) -> int:
        return 2 * v

    def held(self, gate: str, v: int) -> int:
        with open(gate, "rb") as f:
            f.read(1)
        return v

    def pid(self) -> int:
        import os

        return os.getpid()


def _double(actor: rigd.actor.ActorHandle, v: int) -> rigd.ObjectRef[int]:
    return actor.double.remote(v)


def test_map_yields_each_result_in_the_order_of_the_values() -> None:
    pool = ActorPool([Doubler.remote(), Doubler.remote()])

    assert list(pool.map(_double, range(10))) == [2 * v for v in range(10)]
    assert not pool.has_next()


def test_map_unordered_yields_every_result_once() -> None:
    pool = ActorPool([Doubler.remote(), Doubler.remote()])

    assert sorted(pool.map_unordered(_double, range(10))) == [2 * v for v in range(10)]


def test_values_wait_while_every_actor_is_busy_and_run_when_one_is_free(gate: str) -> None:
    actor = Doubler.remote()
    pool = ActorPool([actor])
    pool.submit(lambda a, v: a.held.remote(gate, v), 1)
    pool.submit(_double, 5)  # no free actor: waits in the pool

    assert not pool.has_free()
    with pytest.raises(TimeoutError, match="Timed out waiting for result"):
        pool.get_next(timeout=0.05)
    open_gate(gate)
    assert pool.get_next(timeout=30) == 1
    assert pool.get_next(timeout=30) == 10
    assert pool.has_free()
    with pytest.raises(StopIteration, match="No more results to get"):
        pool.get_next()


def test_get_next_unordered_returns_the_ready_result_before_an_older_held_one(
    gate: str,
) -> None:
    pool = ActorPool([Doubler.remote(), Doubler.remote()])
    pool.submit(lambda a, v: a.held.remote(gate, v), 1)
    pool.submit(_double, 3)

    assert pool.get_next_unordered(timeout=30) == 6
    open_gate(gate)
    assert pool.get_next(timeout=30) == 1  # the older one, still pending


def test_a_timed_out_result_ignored_hands_its_actor_back(gate: str) -> None:
    pool = ActorPool([Doubler.remote()])
    pool.submit(lambda a, v: a.held.remote(gate, v), 1)

    with pytest.raises(TimeoutError, match="has been ignored"):
        pool.get_next(timeout=0.05, ignore_if_timedout=True)

    assert not pool.has_next()
    assert pool.has_free()
    open_gate(gate)


def test_push_adds_an_actor_and_pop_idle_takes_one_out() -> None:
    first, second = Doubler.remote(), Doubler.remote()
    pool = ActorPool([first])

    pool.push(second)
    with pytest.raises(ValueError, match="already belongs"):
        pool.push(second)
    taken = [pool.pop_idle(), pool.pop_idle()]
    assert pool.pop_idle() is None
    assert {rigd.get(a.pid.remote(), timeout=30) for a in taken} == {
        rigd.get(first.pid.remote(), timeout=30),
        rigd.get(second.pid.remote(), timeout=30),
    }


def test_a_call_that_raises_raises_from_the_pool_and_the_actor_serves_on() -> None:
    pool = ActorPool([Doubler.remote()])
    pool.submit(lambda a, v: a.double.remote(v), "x")  # "x" * 2 is fine: a str
    pool.submit(lambda a, v: a.double.remote(v), None)  # 2 * None raises TypeError

    assert pool.get_next(timeout=30) == "xx"
    with pytest.raises(TypeError):
        pool.get_next(timeout=30)
    assert list(pool.map(_double, [4])) == [8]
