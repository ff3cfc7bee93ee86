"""Generator methods stream their items as refs (Ray's "Generators")."""

from __future__ import annotations

import asyncio

import pytest

import rigd
from tests.helpers import open_gate


@rigd.remote
class Frames:
    def grab(self, n, gate=None):
        for k in range(n):
            if gate is not None and k == 1:
                with open(gate, "rb") as f:  # the second item waits for the test
                    f.read(1)
            yield k * 10

    def broken(self):
        yield 1
        yield 2
        raise ValueError("sensor unplugged")

    @rigd.method(num_returns="streaming")
    def declared(self):
        yield "a"
        yield "b"


def test_each_item_arrives_as_soon_as_the_method_yields_it(gate: str) -> None:
    frames = Frames.remote()

    stream = frames.grab.remote(3, gate)
    first = next(stream)

    assert rigd.get(first, timeout=30) == 0  # while the method still waits at item 2
    assert not stream.completed()
    open_gate(gate)
    assert [rigd.get(ref, timeout=30) for ref in stream] == [10, 20]
    assert stream.completed()


def test_an_exception_surfaces_at_the_item_where_it_happened() -> None:
    frames = Frames.remote()

    refs = list(frames.broken.remote())

    assert [rigd.get(r) for r in refs[:2]] == [1, 2]
    with pytest.raises(ValueError, match="sensor unplugged"):
        rigd.get(refs[2])
    assert len(refs) == 3


def test_num_returns_streaming_is_accepted_as_in_ray() -> None:
    frames = Frames.remote()

    assert [rigd.get(r) for r in frames.declared.remote()] == ["a", "b"]
    stream = frames.grab.options(num_returns="streaming").remote(2)
    assert [rigd.get(r) for r in stream] == [0, 10]


def test_async_generators_stream_with_async_for() -> None:
    @rigd.remote
    class Ticker:
        async def ticks(self, n):
            for k in range(n):
                await asyncio.sleep(0)
                yield k

    ticker = Ticker.remote()

    async def consume():
        return [await ref async for ref in ticker.ticks.remote(4)]

    assert asyncio.run(consume()) == [0, 1, 2, 3]


def test_a_threaded_actor_streams_too() -> None:
    frames = Frames.options(max_concurrency=2).remote()

    assert [rigd.get(r) for r in frames.grab.remote(3)] == [0, 10, 20]


def test_a_generator_task_streams_its_items() -> None:
    @rigd.remote
    def numbers(n):
        for k in range(n):
            yield k * k

    assert [rigd.get(r, timeout=30) for r in numbers.remote(4)] == [0, 1, 4, 9]


def test_an_async_generator_task_streams_and_fails_at_its_item() -> None:
    @rigd.remote
    async def ticks():
        yield "a"
        await asyncio.sleep(0)
        yield "b"
        raise RuntimeError("clock lost")

    refs = list(ticks.remote())

    assert [rigd.get(r) for r in refs[:2]] == ["a", "b"]
    with pytest.raises(RuntimeError, match="clock lost"):
        rigd.get(refs[2])


def test_a_task_item_arrives_before_the_task_ends(gate: str) -> None:
    @rigd.remote
    def slow(path):
        yield "first"
        with open(path, "rb") as f:
            f.read(1)
        yield "second"

    stream = slow.remote(gate)

    assert rigd.get(next(stream), timeout=30) == "first"
    open_gate(gate)
    assert [rigd.get(r, timeout=30) for r in stream] == ["second"]


def test_num_returns_that_is_not_a_count_or_a_mode_is_refused() -> None:
    @rigd.remote
    def f():
        return 1

    with pytest.raises(ValueError, match=r"^num_returns must be >= 0, got -1$"):
        f.options(num_returns=-1)
    with pytest.raises(ValueError, match=r"got 'many'$"):
        f.options(num_returns="many")
