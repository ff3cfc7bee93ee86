"""How threaded and async actors run their calls (serial actors run them inline).

The worker's main thread reads every call and hands it to an executor at
once, so a cancel sent later is seen while the call still waits its turn.

- ``ThreadedExecutor``: a thread pool per concurrency group, of the group's
  size (Ray's threaded actors). A call that has not started can be
  cancelled; a running one is not interrupted.
- ``AsyncExecutor``: one event loop on its own thread; each call is a task,
  bounded per group by a semaphore of the group's size (Ray's async actors;
  1000 by default). Cancelling a call cancels its task, waiting or running:
  the method sees ``asyncio.CancelledError``.

Either way the caller of a cancelled call gets ``TaskCancelledError``, even
if the method swallowed the ``CancelledError``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import inspect
import socket
import threading
from collections.abc import Callable
from typing import Any

from rigd._exceptions import TaskCancelledError
from rigd.actors import _context
from rigd.actors._context import ActorExit
from rigd.actors._messages import Msg
from rigd.actors._schema import ActorSchema

__all__ = ["AsyncExecutor", "Executor", "ThreadedExecutor"]

#: ``reply(conn, call_id, function_name, result, error)``: sends the answer.
Reply = Callable[[socket.socket, int, str, Any, BaseException | None], None]
#: ``on_exit(conn, call_id)``: a method called exit_actor().
OnExit = Callable[[socket.socket, int], None]

DEFAULT_GROUP = ""


def _cancelled(function_name: str) -> TaskCancelledError:
    return TaskCancelledError(f"the call {function_name} was cancelled with rigd.cancel")


class Executor:
    """Runs an actor's calls off the main thread."""

    def __init__(self, schema: ActorSchema, reply: Reply, on_exit: OnExit) -> None:
        self.schema = schema
        self.reply = reply
        self.on_exit = on_exit

    def group_size(self, group: str | None) -> tuple[str, int]:
        if group is None:
            return DEFAULT_GROUP, self.schema.default_group_size
        return group, self.schema.groups[group]

    def submit(
        self,
        conn: socket.socket,
        call_id: int,
        function_name: str,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        group: str | None,
    ) -> None:
        raise NotImplementedError

    def cancel(self, conn: socket.socket, call_id: int) -> None:
        raise NotImplementedError

    def shutdown(self, timeout: float) -> None:
        raise NotImplementedError


class ThreadedExecutor(Executor):
    """A pool of threads per concurrency group."""

    def __init__(self, schema: ActorSchema, reply: Reply, on_exit: OnExit) -> None:
        super().__init__(schema, reply, on_exit)
        self.pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self.calls: dict[
            tuple[socket.socket, int], tuple[concurrent.futures.Future[None], str]
        ] = {}
        self.lock = threading.Lock()

    def _pool(self, group: str | None) -> concurrent.futures.ThreadPoolExecutor:
        name, size = self.group_size(group)
        pool = self.pools.get(name)
        if pool is None:
            pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=size, thread_name_prefix=f"rigd-actor-{name or 'default'}"
            )
            self.pools[name] = pool
        return pool

    def submit(
        self,
        conn: socket.socket,
        call_id: int,
        function_name: str,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        group: str | None,
    ) -> None:
        def run() -> None:
            with self.lock:
                self.calls.pop((conn, call_id), None)
            try:
                result = method(*args, **kwargs)
            except ActorExit:
                self.on_exit(conn, call_id)
                return
            except Exception as exc:  # noqa: BLE001 - boundary: the error goes to the caller
                self.reply(conn, call_id, function_name, None, exc)
                return
            self.reply(conn, call_id, function_name, result, None)

        with self.lock:
            future = self._pool(group).submit(run)
            if not future.done():
                self.calls[(conn, call_id)] = (future, function_name)

    def cancel(self, conn: socket.socket, call_id: int) -> None:
        with self.lock:
            entry = self.calls.pop((conn, call_id), None)
        if entry is not None and entry[0].cancel():
            self.reply(conn, call_id, entry[1], None, _cancelled(entry[1]))

    def shutdown(self, timeout: float) -> None:
        for pool in self.pools.values():
            pool.shutdown(wait=False, cancel_futures=True)


class _Group:
    """Admission to one concurrency group of an async actor, first come first served."""

    __slots__ = ("active", "size", "waiting")

    def __init__(self, size: int) -> None:
        self.size = size
        self.active = 0
        self.waiting: collections.deque[_Call] = collections.deque()


class _Call:
    __slots__ = ("args", "call_id", "conn", "function_name", "group", "kwargs", "method")

    def __init__(
        self,
        conn: socket.socket,
        call_id: int,
        function_name: str,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        group: _Group,
    ) -> None:
        self.conn = conn
        self.call_id = call_id
        self.function_name = function_name
        self.method = method
        self.args = args
        self.kwargs = kwargs
        self.group = group


class AsyncExecutor(Executor):
    """One event loop on its own thread; each admitted call a task.

    Calls are admitted to their group in arrival order, and a call's task is
    created only once a slot is free. (An ``asyncio.Semaphore`` inside each
    task would let a task created early take a slot ahead of a task that was
    woken first, and the guide's batching example then deadlocks.)
    """

    def __init__(
        self,
        schema: ActorSchema,
        reply: Reply,
        on_exit: OnExit,
        send: Callable[[socket.socket, tuple[Any, ...]], None],
        own_thread: bool = True,
    ) -> None:
        super().__init__(schema, reply, on_exit)
        self.send = send
        self.loop = asyncio.new_event_loop()
        self.groups: dict[str, _Group] = {}
        self.tasks: dict[tuple[socket.socket, int], asyncio.Task[None]] = {}
        self.cancelled: set[tuple[socket.socket, int]] = set()
        _context.actor_loop = self.loop
        # Without its own thread the caller runs the loop (the worker's main
        # thread does) and calls submit and cancel from inside it.
        self.thread: threading.Thread | None = None
        if own_thread:
            self.thread = threading.Thread(
                target=self.loop.run_forever, name="rigd-actor-loop", daemon=True
            )
            self.thread.start()

    def submit(
        self,
        conn: socket.socket,
        call_id: int,
        function_name: str,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        group: str | None,
    ) -> None:
        if self.thread is None:
            self._admit(conn, call_id, function_name, method, args, kwargs, group)
        else:
            self.loop.call_soon_threadsafe(
                self._admit, conn, call_id, function_name, method, args, kwargs, group
            )

    def _admit(
        self,
        conn: socket.socket,
        call_id: int,
        function_name: str,
        method: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        group_name: str | None,
    ) -> None:
        name, size = self.group_size(group_name)
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = _Group(size)
        call = _Call(conn, call_id, function_name, method, args, kwargs, group)
        if group.active < group.size:
            self._start(call)
        else:
            group.waiting.append(call)

    def _start(self, call: _Call) -> None:
        call.group.active += 1
        key = (call.conn, call.call_id)
        task = self.loop.create_task(self._run(call))
        self.tasks[key] = task
        task.add_done_callback(functools.partial(self._finished, call))

    def _finished(self, call: _Call, _task: object = None) -> None:
        group = call.group
        group.active -= 1
        if group.waiting and group.active < group.size:
            self._start(group.waiting.popleft())

    async def _run(self, call: _Call) -> None:
        key = (call.conn, call.call_id)
        conn, call_id, function_name = call.conn, call.call_id, call.function_name
        try:
            result = call.method(*call.args, **call.kwargs)
            if inspect.isawaitable(result):
                result = await result
            elif inspect.isasyncgen(result):
                async for item in result:
                    self.send(conn, (int(Msg.REPLY_ITEM), call_id, item))
                self.send(conn, (int(Msg.REPLY_END), call_id))
                return
        except asyncio.CancelledError:
            self.cancelled.discard(key)
            self.reply(conn, call_id, function_name, None, _cancelled(function_name))
            return
        except ActorExit:
            self.on_exit(conn, call_id)
            return
        except Exception as exc:  # noqa: BLE001 - boundary: the error goes to the caller
            self.reply(conn, call_id, function_name, None, exc)
            return
        finally:
            self.tasks.pop(key, None)
        if key in self.cancelled:
            # The method swallowed its CancelledError; the caller still asked
            # for a cancel, and gets one (as in Ray).
            self.cancelled.discard(key)
            self.reply(conn, call_id, function_name, None, _cancelled(function_name))
            return
        self.reply(conn, call_id, function_name, result, None)

    def cancel(self, conn: socket.socket, call_id: int) -> None:
        def cancel_on_loop() -> None:
            task = self.tasks.get((conn, call_id))
            if task is not None:
                self.cancelled.add((conn, call_id))
                task.cancel()
                return
            for group in self.groups.values():
                for call in group.waiting:
                    if call.conn is conn and call.call_id == call_id:
                        group.waiting.remove(call)
                        self.reply(
                            conn, call_id, call.function_name, None, _cancelled(call.function_name)
                        )
                        return

        if self.thread is None:
            cancel_on_loop()
        else:
            self.loop.call_soon_threadsafe(cancel_on_loop)

    def shutdown(self, timeout: float) -> None:
        def stop() -> None:
            for group in self.groups.values():
                group.waiting.clear()
            for task in self.tasks.values():
                task.cancel()
            self.loop.stop()

        if self.thread is None:
            for group in self.groups.values():
                group.waiting.clear()
            for task in self.tasks.values():
                task.cancel()
            return
        self.loop.call_soon_threadsafe(stop)
        self.thread.join(timeout)
