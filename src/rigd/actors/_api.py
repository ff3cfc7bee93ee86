"""The module-level functions of the actor API: get, wait, put, kill, ..."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any, TypeVar, overload

from rigd._exceptions import GetTimeoutError, TaskCancelledError
from rigd.actors import _context, _session
from rigd.actors._generator import ObjectRefGenerator, set_blocking
from rigd.actors._handle import ActorHandle
from rigd.actors._options import check_name
from rigd.actors._ref import ObjectRef
from rigd.actors._to_head import Blocked, GetActor, Kill, Unblocked

__all__ = ["cancel", "exit_actor", "get", "get_actor", "get_gpu_ids", "kill", "put", "wait"]

T = TypeVar("T")


def _refuse_on_actor_loop(name: str) -> None:
    if not _context.actor_loops:
        return
    import asyncio

    if asyncio._get_running_loop() in _context.actor_loops:
        raise RuntimeError(
            f"rigd.{name} blocks, and inside an async actor's method it would freeze every "
            f"call of the actor; use `await ref` or `await asyncio.gather(*refs)` instead"
        )


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0
    ):
        raise ValueError(f"timeout must be None or a number >= 0, got {timeout!r}")


class _Blocking:
    """Tell the head while a task waits, so its CPU can run what it waits for."""

    __slots__ = ("_runtime",)

    def __init__(self) -> None:
        self._runtime = _session.get_runtime() if _context.current_task is not None else None

    def __enter__(self) -> None:
        if self._runtime is not None:
            self._runtime.head_notice(Blocked())

    def __exit__(self, *exc: object) -> None:
        if self._runtime is not None:
            self._runtime.head_notice(Unblocked())


set_blocking(_Blocking)


@overload
def get(refs: ObjectRef[T], *, timeout: float | None = None) -> T: ...
@overload
def get(refs: Sequence[ObjectRef[Any]], *, timeout: float | None = None) -> list[Any]: ...


def get(refs: Any, *, timeout: float | None = None) -> Any:
    """Wait for one ref's value, or a list of refs' values.

    Args:
        refs: an ``ObjectRef`` or a list of them.
        timeout: seconds to wait at most; ``None`` waits for ever.

    Returns:
        The value, or the list of values in the order of ``refs``.

    Raises:
        TypeError: ``refs`` is not a ref or a list of refs.
        GetTimeoutError: not all values arrived within ``timeout``.
        TaskError: the call raised (also an instance of the original class).
        ActorDiedError: the actor died before answering.
    """
    ray = _session.ray_backend()
    if ray is not None:
        return ray.get(refs, timeout)
    _check_timeout(timeout)
    _refuse_on_actor_loop("get")
    if isinstance(refs, ObjectRef):
        if not refs._done:
            with _Blocking():
                if not _session.get_runtime().wait(refs, timeout):
                    raise GetTimeoutError(
                        f"rigd.get timed out after {timeout} s waiting for {refs!r}"
                    )
        return refs._result()
    if not isinstance(refs, list | tuple):
        raise TypeError(
            f"rigd.get takes an ObjectRef or a list of ObjectRefs, got {type(refs).__name__}: "
            f"{refs!r}; call .remote() to get a ref"
        )
    for index, ref in enumerate(refs):
        if not isinstance(ref, ObjectRef):
            raise TypeError(
                f"rigd.get takes ObjectRefs, but item {index} is {type(ref).__name__}: {ref!r}"
            )
    deadline = None if timeout is None else time.monotonic() + timeout
    runtime = _session.get_runtime()
    with _Blocking():
        for ref in refs:
            if ref._done:
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not runtime.wait(ref, left):
                waiting = sum(not r._done for r in refs)
                raise GetTimeoutError(
                    f"rigd.get timed out after {timeout} s with {waiting} of {len(refs)} refs "
                    "not ready"
                )
    return [ref._result() for ref in refs]


def wait(
    refs: Sequence[ObjectRef[Any]],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
) -> tuple[list[ObjectRef[Any]], list[ObjectRef[Any]]]:
    """Wait until ``num_returns`` of ``refs`` are ready, or ``timeout`` passes.

    Returns:
        ``(ready, not_ready)``, each in the order of ``refs``. ``ready`` holds
        at most ``num_returns`` refs. An empty ``refs`` gives ``([], [])``.

    Raises:
        TypeError: ``refs`` is not a list of refs.
        ValueError: ``num_returns`` is out of range, or refs repeat.
    """
    ray = _session.ray_backend()
    if ray is not None:
        return ray.wait(refs, num_returns, timeout, True)  # type: ignore[no-any-return]
    _check_timeout(timeout)
    _refuse_on_actor_loop("wait")
    if isinstance(refs, ObjectRef) or not isinstance(refs, list | tuple):
        raise TypeError(f"rigd.wait takes a list of ObjectRefs, got {type(refs).__name__}")
    for index, ref in enumerate(refs):
        if not isinstance(ref, ObjectRef):
            raise TypeError(
                f"rigd.wait takes ObjectRefs, but item {index} is {type(ref).__name__}: {ref!r}"
            )
    if not refs:
        return [], []  # as in Ray: nothing to wait for
    if (
        isinstance(num_returns, bool)
        or not isinstance(num_returns, int)
        or not (1 <= num_returns <= len(refs))
    ):
        raise ValueError(
            f"num_returns must be between 1 and len(refs)={len(refs)}, got {num_returns!r}"
        )
    if len({id(r) for r in refs}) != len(refs):
        raise ValueError("rigd.wait got the same ref twice; pass each ref once")
    import threading

    ready_count = [0]
    lock = threading.Lock()
    enough = threading.Lock()
    enough.acquire()

    def on_done(_: ObjectRef[Any]) -> None:
        with lock:
            ready_count[0] += 1
            if ready_count[0] == num_returns:
                enough.release()

    for ref in refs:
        ref._add_callback(on_done)
    with _Blocking():
        enough.acquire(timeout=-1 if timeout is None else timeout)
    ready: list[ObjectRef[Any]] = []
    not_ready: list[ObjectRef[Any]] = []
    for ref in refs:
        (ready if ref._done and len(ready) < num_returns else not_ready).append(ref)
    return ready, not_ready


def cancel(
    ref: ObjectRef[Any] | ObjectRefGenerator, *, force: bool = False, recursive: bool = True
) -> None:
    """Cancel the call that will fill ``ref``, as well as can be done (Ray's rules).

    A call not yet started is dropped and its ref raises
    ``TaskCancelledError``. A running task gets ``KeyboardInterrupt`` in its
    worker (``force=True``: its worker is killed, and replaced); its ref
    raises ``TaskCancelledError``. A running call of an async actor gets
    ``asyncio.CancelledError`` in the actor. A running call of a serial or
    threaded actor is not interrupted, but a generator method stops at its
    next item. A streaming generator's caller gets ``TaskCancelledError``
    from its next item at once.

    Args:
        ref: the ref of an actor call or a task, or a streaming generator.
        force: kill the worker running a task (refused for actor calls, as in Ray).
        recursive: accepted for Ray compatibility.

    Raises:
        TypeError: ``ref`` is not an ObjectRef or an ObjectRefGenerator.
        ValueError: ``force=True`` for an actor call.
    """
    ray = _session.ray_backend()
    if ray is not None:
        ray.cancel(ref, force, recursive)
        return
    if isinstance(ref, ObjectRefGenerator):
        if ref._canceller is not None and not ref._done:
            ref._canceller(force)
            ref._set_error(TaskCancelledError("the streaming call was cancelled with rigd.cancel"))
        return
    if not isinstance(ref, ObjectRef):
        raise TypeError(
            f"rigd.cancel takes an ObjectRef or an ObjectRefGenerator, got "
            f"{type(ref).__name__}: {ref!r}"
        )
    canceller = ref._canceller
    if canceller is not None and not ref._done:
        canceller(force)


def put(value: T) -> ObjectRef[T]:
    """Store a value and return a ref to it, to pass to calls.

    Raises:
        TypeError: ``value`` is already a ref.
    """
    ray = _session.ray_backend()
    if ray is not None:
        return ray.put(value)  # type: ignore[no-any-return]
    if isinstance(value, ObjectRef):
        raise TypeError("rigd.put takes a value, not an ObjectRef; pass the ref itself instead")
    _session.get_runtime()
    return ObjectRef._resolved(value)


def get_actor(name: str, namespace: str | None = None) -> ActorHandle[Any]:
    """Return a handle to the actor named ``name``.

    Args:
        name: the name given with ``.options(name=...)``.
        namespace: its namespace; this driver's by default.

    Raises:
        TypeError: ``name`` or ``namespace`` is not a string.
        ValueError: either is empty, or no such actor in that namespace.
    """
    ray = _session.ray_backend()
    if ray is not None:
        return ray.get_actor(name, namespace)  # type: ignore[no-any-return]
    check_name("name", name)
    if namespace is not None:
        check_name("namespace", namespace)
    runtime = _session.get_runtime()
    info = runtime.head_call(GetActor(name, namespace or runtime.namespace))
    return ActorHandle._from_info(runtime, info)


def kill(actor: ActorHandle[Any], *, no_restart: bool = True) -> None:
    """End an actor at once, without cleanup.

    Its call in progress and every pending and later call fail with
    ``ActorDiedError``. ``__rigd_shutdown__`` and atexit handlers do not run.

    Raises:
        TypeError: ``actor`` is not an actor handle.
    """
    ray = _session.ray_backend()
    if ray is not None:
        ray.kill(actor, no_restart)
        return
    if not isinstance(actor, ActorHandle):
        raise TypeError(f"rigd.kill takes an actor handle, got {type(actor).__name__}: {actor!r}")
    actor._runtime.head_call(Kill(actor._actor_id, no_restart))


def exit_actor() -> None:
    """End the current actor gracefully, from inside one of its methods.

    The method's caller gets ``ActorDiedError``; calls sent later fail the
    same way; ``__rigd_shutdown__`` runs.

    Raises:
        TypeError: called outside an actor.
    """
    ray = _session.ray_backend()
    if ray is not None:
        ray.exit_actor()
    if _context.current_actor is None:
        raise TypeError("exit_actor() must be called from inside an actor's method")
    raise _context.ActorExit


def get_gpu_ids() -> list[int]:
    """Return the GPU ids assigned to this actor or task (empty when none).

    The ids are the GPUs' indexes as NVML numbers them. rigd sets them, with
    ``CUDA_VISIBLE_DEVICES`` (the GPUs' UUIDs), before the worker's code
    runs; a CPU-only worker has none.
    """
    ray = _session.ray_backend()
    if ray is not None:
        return ray.get_gpu_ids()  # type: ignore[no-any-return]
    if not _session.in_worker():
        return []
    ids = os.environ.get(_context.GPU_IDS_ENV, "")
    return [int(i) for i in ids.split(",") if i]
