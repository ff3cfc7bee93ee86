"""How threaded and async actors run their calls (serial actors run them inline).

The worker's main thread reads every call and hands it to an executor at
once, so a cancel sent later is seen while the call still waits its turn.

- ``ThreadedExecutor``: a thread pool per concurrency group, of the group's
  size (Ray's threaded actors). A call that has not started can be
  cancelled; a running one is not interrupted.
- ``AsyncExecutor``: the actor's event loop, which the worker's main thread
  runs; each call is a task, admitted to its concurrency group in arrival
  order (Ray's async actors; 1000 at once by default). Cancelling a call
  cancels its task, waiting or running: the method sees
  ``asyncio.CancelledError``.

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
from dataclasses import dataclass
from typing import Any

from rigd._exceptions import TaskCancelledError
from rigd.actors import _context
from rigd.actors._call_messages import reply_end, reply_item
from rigd.actors._context import ActorExit
from rigd.actors._schema import ActorSchema

__all__ = ["AsyncExecutor", "Call", "Executor", "ThreadedExecutor"]

#: ``reply(conn, call_id, function_name, result, error)``: sends the answer.
Reply = Callable[[socket.socket, int, str, Any, BaseException | None], None]
#: ``on_exit(conn, call_id, exc)``: a method called exit_actor() (``exc`` None),
#: or raised SystemExit, KeyboardInterrupt or another BaseException.
OnExit = Callable[[socket.socket, int, BaseException | None], None]
#: ``send(conn, message)``: sends a message to the caller.
Send = Callable[[socket.socket, tuple[Any, ...]], None]

DEFAULT_GROUP = ""


@dataclass(slots=True)
class Call:
    """One call an actor took, waiting for or running in its executor."""

    conn: socket.socket
    call_id: int
    function_name: str
    method: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    group: str | None
    #: The call's task id, for rigd.get_runtime_context().get_task_id().
    task_name: str | None = None

    @property
    def key(self) -> tuple[socket.socket, int]:
        return (self.conn, self.call_id)


def _cancelled(function_name: str) -> TaskCancelledError:
    return TaskCancelledError(f"the call {function_name} was cancelled with rigd.cancel")


class Executor:
    """Runs an actor's calls off the serial path."""

    def __init__(self, schema: ActorSchema, reply: Reply, on_exit: OnExit) -> None:
        self.schema = schema
        self.reply = reply
        self.on_exit = on_exit

    def group_size(self, group: str | None) -> tuple[str, int]:
        if group is None:
            return DEFAULT_GROUP, self.schema.default_group_size
        return group, self.schema.groups[group]

    def submit(self, call: Call) -> None:
        """Run ``call`` when its group has room."""
        raise NotImplementedError

    def cancel(self, conn: socket.socket, call_id: int) -> None:
        """Cancel the call if it waits (or, for async actors, runs)."""
        raise NotImplementedError

    def shutdown(self, timeout: float) -> None:
        """Drop waiting calls; let running ones end within ``timeout`` if they can."""
        raise NotImplementedError


class ThreadedExecutor(Executor):
    """A pool of threads per concurrency group."""

    def __init__(self, schema: ActorSchema, reply: Reply, on_exit: OnExit) -> None:
        super().__init__(schema, reply, on_exit)
        self.pools: dict[str, concurrent.futures.ThreadPoolExecutor] = {}
        self.waiting: dict[
            tuple[socket.socket, int], tuple[concurrent.futures.Future[None], Call]
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

    def submit(self, call: Call) -> None:
        with self.lock:
            future = self._pool(call.group).submit(self._run, call)
            if not future.done():
                self.waiting[call.key] = (future, call)

    def _run(self, call: Call) -> None:
        with self.lock:
            self.waiting.pop(call.key, None)
        _context.current_call.set(call.task_name)
        try:
            result = call.method(*call.args, **call.kwargs)
        except ActorExit:
            self.on_exit(call.conn, call.call_id, None)
            return
        except Exception as exc:  # noqa: BLE001 - boundary: the error goes to the caller
            self.reply(call.conn, call.call_id, call.function_name, None, exc)
            return
        except BaseException as exc:  # noqa: BLE001 - sys.exit, KeyboardInterrupt: the actor ends
            self.on_exit(call.conn, call.call_id, exc)
            return
        self.reply(call.conn, call.call_id, call.function_name, result, None)

    def cancel(self, conn: socket.socket, call_id: int) -> None:
        with self.lock:
            entry = self.waiting.pop((conn, call_id), None)
        if entry is not None and entry[0].cancel():
            name = entry[1].function_name
            self.reply(conn, call_id, name, None, _cancelled(name))

    def shutdown(self, timeout: float) -> None:
        for pool in self.pools.values():
            pool.shutdown(wait=False, cancel_futures=True)


class _Group:
    """One concurrency group of an async actor: its event loop, admission and tasks.

    Every declared group has an event loop of its own, on a thread of its
    own (as in Ray), and so has the default group once any is declared, so
    a method that blocks its loop holds back only its own group. All of a
    group's state is touched only from its loop's thread.
    """

    __slots__ = ("active", "cancelled", "loop", "size", "tasks", "thread", "waiting")

    def __init__(self, size: int, loop: asyncio.AbstractEventLoop) -> None:
        self.size = size
        self.loop = loop
        self.active = 0
        self.waiting: collections.deque[Call] = collections.deque()
        self.tasks: dict[tuple[socket.socket, int], asyncio.Task[None]] = {}
        self.cancelled: set[tuple[socket.socket, int]] = set()
        self.thread: threading.Thread | None = None


class AsyncExecutor(Executor):
    """The actor's event loops; each admitted call a task.

    The worker's main thread reads the sockets on ``io_loop`` and calls
    ``submit`` and ``cancel`` from inside it. An actor with no declared
    groups runs its default group on that same loop: a call goes from the
    socket to its task with no hand-off between threads. An actor that
    declares groups runs its default group's loop (``loop``) on a thread of
    its own, as every declared group's: a default-group method that blocks
    its loop then holds back neither the reading of calls nor another group
    (as in Ray, whose I/O thread is never an actor's loop). Calls are
    admitted to their group in arrival order, and a call's task is created
    only once a slot is free. (An ``asyncio.Semaphore`` inside each task
    would let a task created early take a slot ahead of a task that was woken
    first, and the guide's batching example then deadlocks.)
    """

    def __init__(
        self,
        schema: ActorSchema,
        reply: Reply,
        on_exit: OnExit,
        send: Send,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(schema, reply, on_exit)
        self.send = send
        self.loop = loop if loop is not None else asyncio.new_event_loop()
        self.io_loop = self.loop if not schema.groups else asyncio.new_event_loop()
        self.groups: dict[str, _Group] = {}
        #: Set when the actor ends: a task cancelled then sends no answer, so
        #: its caller gets ActorDiedError when the connection closes, not
        #: TaskCancelledError from a group's thread racing the exit.
        self.closing = False
        _context.actor_loops.add(self.loop)

    def _group(self, name: str, size: int) -> _Group:
        group = self.groups.get(name)
        if group is not None:
            return group
        if name == DEFAULT_GROUP:
            loop = self.loop
        else:
            loop = asyncio.new_event_loop()
            _context.actor_loops.add(loop)
        group = _Group(size, loop)
        if loop is not self.io_loop:
            group.thread = threading.Thread(
                target=_run_loop,
                args=(loop,),
                name=f"rigd-actor-{name or 'default'}",
                daemon=True,
            )
            group.thread.start()
        self.groups[name] = group
        return group

    def _on_loop(self, group: _Group, action: Callable[..., None], *args: Any) -> None:
        if group.loop is self.io_loop:
            action(*args)  # the main thread runs this loop: no hand-off
        else:
            group.loop.call_soon_threadsafe(action, *args)

    def submit(self, call: Call) -> None:
        group = self._group(*self.group_size(call.group))
        self._on_loop(group, self._admit, group, call)

    def _admit(self, group: _Group, call: Call) -> None:
        if group.active < group.size:
            self._start(call, group)
        else:
            group.waiting.append(call)

    def _start(self, call: Call, group: _Group) -> None:
        group.active += 1
        task = group.loop.create_task(self._run(call, group))
        group.tasks[call.key] = task
        task.add_done_callback(functools.partial(self._finished, group))

    def _finished(self, group: _Group, _task: object = None) -> None:
        group.active -= 1
        if group.waiting and group.active < group.size:
            self._start(group.waiting.popleft(), group)

    async def _run(self, call: Call, group: _Group) -> None:
        key = call.key
        conn, call_id, function_name = call.conn, call.call_id, call.function_name
        _context.current_call.set(call.task_name)  # this task's own context
        try:
            result = call.method(*call.args, **call.kwargs)
            if inspect.isawaitable(result):
                result = await result
            elif inspect.isasyncgen(result):
                async for item in result:
                    self.send(conn, reply_item(call_id, item))
                self.send(conn, reply_end(call_id))
                return
        except asyncio.CancelledError:
            group.cancelled.discard(key)
            if self.closing:
                return
            self.reply(conn, call_id, function_name, None, _cancelled(function_name))
            return
        except ActorExit:
            self.on_exit(conn, call_id, None)
            return
        except Exception as exc:  # noqa: BLE001 - boundary: the error goes to the caller
            self.reply(conn, call_id, function_name, None, exc)
            return
        except BaseException as exc:  # noqa: BLE001 - sys.exit, KeyboardInterrupt: the actor ends
            self.on_exit(conn, call_id, exc)
            return
        finally:
            group.tasks.pop(key, None)
        if key in group.cancelled:
            # The method swallowed its CancelledError; the caller still asked
            # for a cancel, and gets one (as in Ray).
            group.cancelled.discard(key)
            self.reply(conn, call_id, function_name, None, _cancelled(function_name))
            return
        self.reply(conn, call_id, function_name, result, None)

    def cancel(self, conn: socket.socket, call_id: int) -> None:
        for group in list(self.groups.values()):
            self._on_loop(group, self._cancel_in, group, conn, call_id)

    def _cancel_in(self, group: _Group, conn: socket.socket, call_id: int) -> None:
        task = group.tasks.get((conn, call_id))
        if task is not None:
            group.cancelled.add((conn, call_id))
            task.cancel()
            return
        for call in group.waiting:
            if call.key == (conn, call_id):
                group.waiting.remove(call)
                self.reply(conn, call_id, call.function_name, None, _cancelled(call.function_name))
                return

    def shutdown(self, timeout: float) -> None:
        self.closing = True
        for group in list(self.groups.values()):
            self._on_loop(group, _cancel_all, group)


def _cancel_all(group: _Group) -> None:
    group.waiting.clear()
    for task in list(group.tasks.values()):
        task.cancel()


def _run_loop(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()
