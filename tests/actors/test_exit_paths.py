"""Every way an actor's code can end its process, in every kind of actor.

The matrix of issue 14: way of ending (``exit_actor``, ``sys.exit``,
``KeyboardInterrupt``, ``os._exit``, a signal, a crash in ``__init__``) x
kind of actor (serial, threaded, async, async with concurrency groups,
threaded with concurrency groups). Whatever the cell, the call that ended the
actor, a call pending at that moment and every later call fail with
``ActorDiedError`` within a bounded time, never a hang; the conftest checks
that the process is gone.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from typing import Any

import pytest

import rigd
from rigd.exceptions import ActorDiedError

TIMEOUT_S = 30


def _end(how: str) -> None:
    """End the calling actor's process the way ``how`` names."""
    if how == "exit_actor":
        rigd.actor.exit_actor()
    elif how == "sys_exit":
        sys.exit(3)
    elif how == "keyboard_interrupt":
        raise KeyboardInterrupt
    elif how == "os_exit":
        os._exit(4)
    elif how == "signal":
        os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError(f"unknown way of ending {how!r}")


WAYS = ["exit_actor", "sys_exit", "keyboard_interrupt", "os_exit", "signal"]


@rigd.remote
class Serial:
    def __init__(self, crash: str | None = None) -> None:
        if crash is not None:
            _end(crash) if crash != "raise" else _raise()

    def ping(self) -> str:
        return "pong"

    def end(self, how: str) -> None:
        _end(how)

    def pending(self) -> str:
        return "ran"  # queued behind end(): must never run


@rigd.remote(max_concurrency=4)
class Threaded:
    def __init__(self, crash: str | None = None) -> None:
        self.never = threading.Event()
        if crash is not None:
            _end(crash) if crash != "raise" else _raise()

    def ping(self) -> str:
        return "pong"

    def end(self, how: str) -> None:
        _end(how)

    def pending(self) -> str:
        self.never.wait()  # in flight when the actor ends
        return "ran"


@rigd.remote(concurrency_groups={"g": 2})
class ThreadedGroups:
    def __init__(self, crash: str | None = None) -> None:
        self.never = threading.Event()
        if crash is not None:
            _end(crash) if crash != "raise" else _raise()

    def ping(self) -> str:
        return "pong"

    @rigd.method(concurrency_group="g")
    def end(self, how: str) -> None:
        _end(how)

    def pending(self) -> str:
        self.never.wait()
        return "ran"


@rigd.remote
class Async:
    def __init__(self, crash: str | None = None) -> None:
        if crash is not None:
            _end(crash) if crash != "raise" else _raise()

    async def ping(self) -> str:
        return "pong"

    async def end(self, how: str) -> None:
        _end(how)

    async def pending(self) -> str:
        await asyncio.Event().wait()
        return "ran"


@rigd.remote(concurrency_groups={"g": 1})
class AsyncGroups:
    def __init__(self, crash: str | None = None) -> None:
        if crash is not None:
            _end(crash) if crash != "raise" else _raise()

    async def ping(self) -> str:
        return "pong"

    @rigd.method(concurrency_group="g")
    async def end(self, how: str) -> None:
        _end(how)

    async def pending(self) -> str:
        await asyncio.Event().wait()
        return "ran"


def _raise() -> None:
    raise RuntimeError("camera not found")


KINDS: dict[str, Any] = {
    "serial": Serial,
    "threaded": Threaded,
    "threaded-groups": ThreadedGroups,
    "async": Async,
    "async-groups": AsyncGroups,
}


def _fails_with_actor_died(ref: rigd.ObjectRef[Any]) -> None:
    with pytest.raises(ActorDiedError):
        rigd.get(ref, timeout=TIMEOUT_S)


@pytest.mark.parametrize("how", WAYS)
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_method_ending_the_actor_fails_its_call_pending_calls_and_later_calls(
    kind: str, how: str
) -> None:
    actor = KINDS[kind].remote()
    assert rigd.get(actor.ping.remote(), timeout=TIMEOUT_S) == "pong"
    if kind == "serial":
        ended = actor.end.remote(how)
        pending = actor.pending.remote()  # queued behind the call that ends it
    else:
        pending = actor.pending.remote()  # running, and never returns by itself
        ended = actor.end.remote(how)

    _fails_with_actor_died(ended)
    _fails_with_actor_died(pending)
    _fails_with_actor_died(actor.ping.remote())


CRASHES: list[str] = ["raise", "sys_exit", "keyboard_interrupt", "os_exit", "signal"]


@pytest.mark.parametrize("crash", CRASHES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_an_actor_whose_constructor_ends_it_fails_every_call(kind: str, crash: str) -> None:
    actor = KINDS[kind].remote(crash)

    first = actor.ping.remote()
    second = actor.pending.remote()

    _fails_with_actor_died(first)
    _fails_with_actor_died(second)
    _fails_with_actor_died(actor.ping.remote())


def test_sys_exit_in_a_method_names_it_in_the_error() -> None:
    actor = Serial.remote()

    with pytest.raises(ActorDiedError, match=r"SystemExit \(sys.exit\(3\)\)"):
        rigd.get(actor.end.remote("sys_exit"), timeout=TIMEOUT_S)


def test_exit_actor_in_a_generator_method_ends_the_stream_with_actor_died() -> None:
    @rigd.remote
    class Stream:
        def items(self, how: str):  # type: ignore[no-untyped-def]
            yield 1
            _end(how)

    actor = Stream.remote()
    stream = actor.items.remote("sys_exit")

    assert rigd.get(next(stream), timeout=TIMEOUT_S) == 1
    with pytest.raises(ActorDiedError):
        rigd.get(next(stream), timeout=TIMEOUT_S)
