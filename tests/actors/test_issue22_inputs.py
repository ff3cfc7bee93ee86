"""Regression tests for the inputs of issue 22: what Ray actor code expects.

Each test names the input it pins (``input N``). Real processes; calls are
held at a FIFO (the ``gate`` fixture) and every wait is bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal

import pytest

import rigd
from rigd.exceptions import (
    ActorDiedError,
    OwnerDiedError,
    TaskCancelledError,
    TaskError,
)
from tests.helpers import open_gate, pid_alive, wait_until


def _wait_gate(path: str) -> str:
    open(path + ".started", "w").close()
    with open(path, "rb") as f:
        f.read(1)
    return "opened"


def _wait_running(path: str) -> None:
    wait_until(lambda: os.path.exists(path + ".started"), what="the call to start")


@rigd.remote
def gated(path: str) -> str:
    return _wait_gate(path)


@rigd.remote
def get_first(refs: list[rigd.ObjectRef[str]]) -> str:
    return rigd.get(refs[0], timeout=60)


@rigd.remote
class Holder:
    def keep(self, refs: dict[str, rigd.ObjectRef[str]]) -> bool:
        self.refs = refs
        return isinstance(refs["x"], rigd.ObjectRef)

    def read(self) -> str:
        return rigd.get(self.refs["x"], timeout=60)

    def make(self, path: str) -> list[rigd.ObjectRef[str]]:
        return [gated.remote(path)]


# -- input 1: nested refs pass as refs -------------------------------------------------


def test_a_nested_pending_ref_is_passed_without_waiting_for_it(gate: str) -> None:
    pending = gated.remote(gate)
    holder = Holder.remote()

    assert rigd.get(holder.keep.remote({"x": pending}), timeout=30) is True
    reading = holder.read.remote()
    open_gate(gate)

    assert rigd.get(reading, timeout=30) == "opened"


def test_a_task_waiting_on_a_nested_ref_can_be_cancelled(gate: str) -> None:
    pending = gated.remote(gate)
    waiting = get_first.remote([pending])

    rigd.cancel(waiting)

    with pytest.raises(TaskCancelledError):
        rigd.get(waiting, timeout=30)
    open_gate(gate)
    assert rigd.get(pending, timeout=30) == "opened"


def test_a_pending_ref_returned_from_an_actor_is_owned_by_the_actor(gate: str) -> None:
    holder = Holder.remote()

    [inner] = rigd.get(holder.make.remote(gate), timeout=30)
    open_gate(gate)

    assert rigd.get(inner, timeout=30) == "opened"


def test_a_borrowed_ref_whose_owner_died_raises_owner_died(gate: str) -> None:
    holder = Holder.remote()
    [inner] = rigd.get(holder.make.remote(gate), timeout=30)

    rigd.kill(holder)

    with pytest.raises(OwnerDiedError):
        rigd.get(inner, timeout=30)
    open_gate(gate)


# -- input 2: num_returns ----------------------------------------------------------------


@rigd.remote
class Pair:
    @rigd.method(num_returns=2)
    def two(self) -> tuple[int, int]:
        return 1, 2

    def three(self) -> list[int]:
        return [1, 2, 3]

    def count(self, n: int):  # type: ignore[no-untyped-def]
        yield from range(n)


def test_num_returns_on_a_method_gives_one_ref_per_value() -> None:
    pair = Pair.remote()

    first, second = pair.two.remote()
    a, b, c = pair.three.options(num_returns=3).remote()

    assert rigd.get([first, second], timeout=30) == [1, 2]
    assert rigd.get([a, b, c], timeout=30) == [1, 2, 3]


def test_num_returns_that_does_not_match_the_result_fails_every_ref() -> None:
    pair = Pair.remote()

    refs = pair.three.options(num_returns=2).remote()

    for ref in refs:
        with pytest.raises(ValueError, match=r"has num_returns=2 but returned \[1, 2, 3\]"):
            rigd.get(ref, timeout=30)


def test_num_returns_on_a_task_and_zero_and_dynamic() -> None:
    @rigd.remote(num_returns=2)
    def split() -> tuple[str, str]:
        return "a", "b"

    pair = Pair.remote()

    assert rigd.get(list(split.remote()), timeout=30) == ["a", "b"]
    assert pair.three.options(num_returns=0).remote() is None
    dynamic = pair.count.options(num_returns="dynamic").remote(3)
    assert [rigd.get(r, timeout=30) for r in rigd.get(dynamic, timeout=30)] == [0, 1, 2]


# -- input 3: class attributes -----------------------------------------------------------


class _Base:
    BASE = 2

    @staticmethod
    def base_static() -> int:
        return 5


@rigd.remote
class WithAttributes(_Base):
    LIMIT = 3

    @classmethod
    def make(cls) -> int:
        return cls.LIMIT * 10

    @staticmethod
    def helper() -> int:
        return 7

    def inside(self) -> tuple[int, int, int, int, int]:
        remote_cls = WithAttributes
        return (
            remote_cls.LIMIT,
            remote_cls.BASE,
            remote_cls.make(),
            remote_cls.helper(),
            remote_cls.base_static(),
        )


def test_class_attributes_are_on_the_remote_class_and_inside_methods() -> None:
    actor = WithAttributes.remote()

    assert (WithAttributes.LIMIT, WithAttributes.make(), WithAttributes.helper()) == (3, 30, 7)
    assert rigd.get(actor.inside.remote(), timeout=30) == (3, 2, 30, 7, 5)
    with pytest.raises(AttributeError, match=r"is a method of the actor class WithAttributes"):
        WithAttributes.inside  # noqa: B018


# -- input 4: calls and a SIGKILLed restartable actor, as Ray 2 does ----------------------
# Ray 2.60, measured: with max_task_retries=0 every call sent to the process
# that died fails (RayActorError), started or not; calls made once the death
# is known wait for the restart; with retries, calls sent just after the
# SIGKILL run on the restarted actor.


@rigd.remote(max_restarts=-1, max_task_retries=1)
class Restartable:
    def pid(self) -> int:
        return os.getpid()

    def one(self) -> int:
        return 1


def test_with_task_retries_a_call_sent_just_after_a_sigkill_runs_on_the_restarted_actor() -> None:
    actor = Restartable.remote()

    for _ in range(5):
        pid = rigd.get(actor.pid.remote(), timeout=30)
        os.kill(pid, signal.SIGKILL)
        ref = actor.one.remote()

        assert rigd.get(ref, timeout=60) == 1
        assert not pid_alive(pid)


def test_calls_queued_behind_a_call_that_kills_the_actor_fail_as_in_ray(gate: str) -> None:
    @rigd.remote(max_restarts=1)
    class Dies:
        def __init__(self) -> None:
            self.value = 0

        def die(self, path: str) -> None:
            _wait_gate(path)
            os._exit(1)

        def increase(self) -> int:
            self.value += 1
            return self.value

    actor = Dies.remote()
    assert rigd.get(actor.increase.remote(), timeout=30) == 1

    refs = [actor.die.remote(gate), *(actor.increase.remote() for _ in range(5))]
    _wait_running(gate)  # the five calls are sent to the process, behind die
    open_gate(gate)

    for ref in refs:
        with pytest.raises(ActorDiedError, match=r"in flight and is not retried"):
            rigd.get(ref, timeout=30)
    assert rigd.get(actor.increase.remote(), timeout=60) == 1  # a new instance


# -- input 5: wrong arguments refused at .remote() ---------------------------------------


@rigd.remote
class Takes:
    def __init__(self, a: int, b: int = 1) -> None:
        self.a = a

    def m(self, x: int, *, y: int = 0) -> int:
        return x + y


def test_wrong_arguments_are_refused_at_remote() -> None:
    @rigd.remote
    def f(x: int) -> int:
        return x

    with pytest.raises(TypeError, match=r"^Takes.__init__\(\) got arguments it cannot take: "):
        Takes.remote()
    with pytest.raises(TypeError, match=r"multiple values for argument 'a'"):
        Takes.remote(0, a=1)
    actor = Takes.remote(1)
    with pytest.raises(TypeError, match=r"^Takes.m\(\) got arguments it cannot take: "):
        actor.m.remote()
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'z'"):
        actor.m.remote(1, z=2)
    with pytest.raises(TypeError, match=r"^f\(\) got arguments it cannot take: "):
        f.remote(1, 2)
    assert rigd.get(actor.m.remote(1, y=2), timeout=30) == 3


# -- input 6: what @rigd.remote refuses when decorating ------------------------------------


def test_remote_refuses_async_def_functions_and_empty_parentheses() -> None:
    async def coroutine() -> None:
        pass

    with pytest.raises(ValueError, match=r"is an `async def` function, which cannot be a remote"):
        rigd.remote(coroutine)
    with pytest.raises(TypeError, match=r"^@rigd.remote\(\) needs options or no parentheses"):
        rigd.remote()


# -- input 7: future() and as_future() -----------------------------------------------------


def test_a_ref_gives_a_concurrent_future_and_an_asyncio_future() -> None:
    @rigd.remote
    def double(x: int) -> int:
        return 2 * x

    @rigd.remote
    def fail() -> None:
        raise KeyError("k")

    future = double.remote(2).future()
    assert isinstance(future, concurrent.futures.Future)
    assert future.result(timeout=30) == 4
    with pytest.raises(KeyError):
        fail.remote().future().result(timeout=30)

    async def main() -> int:
        return await asyncio.wait_for(double.remote(3).as_future(), timeout=30)

    assert asyncio.run(main()) == 6


# -- input 8: names and namespaces of the wrong type -------------------------------------


def test_names_and_namespaces_of_the_wrong_type_raise_type_error() -> None:
    with pytest.raises(TypeError, match=r"^namespace must be a string, got int: 123$"):
        rigd.init(namespace=123)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^name must be a string, got int: 1$"):
        Takes.options(name=1)
    with pytest.raises(TypeError, match=r"^namespace must be a string"):
        Takes.options(name="a", namespace=b"ns")
    with pytest.raises(TypeError, match=r"^name must be a string"):
        rigd.get_actor(1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^name must be a non-empty string"):
        rigd.get_actor("")
    with pytest.raises(TypeError, match=r"^namespace must be a string"):
        rigd.get_actor("a", namespace=5)  # type: ignore[arg-type]


# -- input 9: subclassing --------------------------------------------------------------------


class _Plain:
    def name(self) -> str:
        return "plain"

    def greet(self) -> str:
        return "hello " + self.name()


def test_a_subclass_of_a_plain_class_can_be_made_remote() -> None:
    @rigd.remote
    class Sub(_Plain):
        def name(self) -> str:
            return "sub"

    assert rigd.get(Sub.remote().greet.remote(), timeout=30) == "hello sub"


def test_subclassing_an_actor_class_is_refused_with_a_message() -> None:
    with pytest.raises(TypeError, match=r"cannot subclass the actor class Takes; inherit from"):

        class Sub(Takes):  # type: ignore[misc,valid-type]
            pass


# -- input 10: cancelling a streaming generator -------------------------------------------


@rigd.remote
class Streamer:
    def items(self, path: str):  # type: ignore[no-untyped-def]
        yield 1
        _wait_gate(path)
        yield 2
        yield 3


def test_cancel_stops_a_streaming_generator_of_an_actor(gate: str) -> None:
    streamer = Streamer.remote()
    stream = streamer.items.remote(gate)
    assert rigd.get(next(stream), timeout=30) == 1
    _wait_running(gate)

    rigd.cancel(stream)
    open_gate(gate)

    with pytest.raises(TaskCancelledError):
        rigd.get(next(stream), timeout=30)
    with pytest.raises(StopIteration):
        next(stream)


def test_cancel_stops_a_streaming_generator_task(gate: str) -> None:
    @rigd.remote
    def items(path: str):  # type: ignore[no-untyped-def]
        yield 1
        _wait_gate(path)
        yield 2

    stream = items.remote(gate)
    assert rigd.get(next(stream), timeout=30) == 1
    _wait_running(gate)

    rigd.cancel(stream)

    with pytest.raises(TaskCancelledError):
        rigd.get(next(stream), timeout=30)


# -- input 11: cancel(force=True) ends the worker, which is replaced --------------------------


def test_force_cancel_kills_the_worker_running_a_task_and_replaces_it(gate: str) -> None:
    @rigd.remote
    def pid_then_hang(path: str) -> None:
        with open(path + ".pid", "w") as f:
            f.write(str(os.getpid()))
        # Ignores KeyboardInterrupt: only force can stop it.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _wait_gate(path)

    @rigd.remote
    def ok() -> str:
        return "ok"

    rigd.init(num_cpus=1)
    ref = pid_then_hang.remote(gate)
    _wait_running(gate)
    with open(gate + ".pid") as f:
        pid = int(f.read())

    rigd.cancel(ref, force=True)

    with pytest.raises(TaskCancelledError, match=r"force=True"):
        rigd.get(ref, timeout=30)
    wait_until(lambda: not pid_alive(pid), what="the cancelled task's worker to end")
    assert rigd.get(ok.remote(), timeout=60) == "ok"


def test_force_cancel_of_an_actor_call_is_refused_as_in_ray(gate: str) -> None:
    actor = Pair.remote()
    ref = actor.three.remote()

    with pytest.raises(ValueError, match=r"^force=True is not supported for actor calls"):
        rigd.cancel(ref, force=True)
    assert rigd.get(ref, timeout=30) == [1, 2, 3]


# -- input 12: the runtime context; retry_exceptions; method .options(name=) ----------------


@rigd.remote(max_restarts=1, max_task_retries=1)
class Context:
    def facts(self) -> dict[str, object]:
        ctx = rigd.get_runtime_context()
        return {
            "job_id": ctx.get_job_id(),
            "node_id": ctx.get_node_id(),
            "actor_id": ctx.get_actor_id(),
            "task_id": ctx.get_task_id(),
            "name": ctx.get_actor_name(),
            "namespace": ctx.namespace,
            "reconstructed": ctx.was_current_actor_reconstructed,
            "gpus": ctx.get_accelerator_ids(),
            "pid": os.getpid(),
        }


def test_the_runtime_context_tells_job_node_actor_task_and_restarts() -> None:
    rigd.init(namespace="lab")
    driver = rigd.get_runtime_context()
    actor = Context.options(name="ctx").remote()

    first = rigd.get(actor.facts.remote(), timeout=30)
    second = rigd.get(actor.facts.remote(), timeout=30)
    os.kill(first["pid"], signal.SIGKILL)  # type: ignore[arg-type]
    after = rigd.get(actor.facts.remote(), timeout=60)

    assert driver.get_actor_id() is None
    assert driver.get_task_id() is None
    assert first["job_id"] == driver.get_job_id()
    assert first["node_id"] == driver.get_node_id()
    assert first["actor_id"] == actor._actor_id
    assert first["name"] == "ctx"
    assert first["namespace"] == "lab"
    assert first["gpus"] == {"GPU": []}
    assert first["task_id"] != second["task_id"]
    assert (first["reconstructed"], after["reconstructed"]) == (False, True)


def test_retry_exceptions_reruns_a_task_that_raised(tmp_path: os.PathLike[str]) -> None:
    marker = os.path.join(str(tmp_path), "tries")

    @rigd.remote(max_retries=2, retry_exceptions=[OSError])
    def flaky(path: str) -> int:
        with open(path, "a") as f:
            f.write("x")
        with open(path) as f:
            tries = len(f.read())
        if tries < 3:
            raise OSError("not yet")
        return tries

    @rigd.remote(max_retries=2, retry_exceptions=[OSError])
    def wrong_kind() -> None:
        raise KeyError("no retry")

    assert rigd.get(flaky.remote(marker), timeout=60) == 3
    with pytest.raises(TaskError, match="KeyError"):
        rigd.get(wrong_kind.remote(), timeout=30)


def test_a_method_call_takes_a_name_option() -> None:
    actor = Pair.remote()

    assert rigd.get(actor.three.options(name="named-call").remote(), timeout=30) == [1, 2, 3]
