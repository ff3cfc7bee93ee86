"""An actor's process serving its callers: ``ActorServer``.

It constructs the actor, listens on the actor's socket, and serves calls on
the main thread: it reads a call, runs the method inline and writes the
reply, with no hand-off between threads, which is what makes a round trip
cost tens of microseconds. Threaded and async actors hand calls to their
executor (``_executors``). Replies leave through ``CallReplies``
(``_call_replies``). The actor ends when the head asks (``TERMINATE``), when
its handles are gone (a drain), or when a method ends it.

``ActorServer`` is the serving loop of the hot path, and its methods
(accept, read, queue, cancel, run) share the per-connection state of that
loop; each hop to another object on a call costs measurable time at tens of
microseconds per call. What does not share it is elsewhere: building the
actor and its executor (``_actor_start``), ending it (``_actor_exit``),
replies (``_call_replies``), executors (``_executors``), task workers
(``_task_worker``), the process's start (``_worker``).
"""

from __future__ import annotations

import collections
import contextlib
import inspect
import os
import queue
import selectors
import socket
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from rigd._exceptions import TaskCancelledError
from rigd.actors import _context
from rigd.actors._actor_exit import close_and_exit, end_actor, why_ended
from rigd.actors._actor_start import construct_actor, make_executor
from rigd.actors._call_messages import read_call, reply_ok
from rigd.actors._call_replies import CallReplies
from rigd.actors._context import ActorExit
from rigd.actors._events import TaskState
from rigd.actors._from_head import StartActor, Terminate
from rigd.actors._messages import CALL, CANCEL, CLOSE, ExitKind, TerminateMode
from rigd.actors._protocol import decode_order
from rigd.actors._replies import error_reply
from rigd.actors._runtime import Runtime
from rigd.actors._schema import BUILTIN_METHODS, ActorKind, ActorSchema, bound_method
from rigd.actors._started import StartedTable, table_path
from rigd.actors._to_head import ActorFailed, ActorReady
from rigd.actors._wire import FrameReader, dumps, loads, pack_frame, recv_nowait

if TYPE_CHECKING:
    from rigd.actors._executors import Executor

__all__ = ["ActorServer"]

# A draining actor waits this long for its callers to close their sockets.
DRAIN_TIMEOUT_S = 30.0
# A serial actor looks for cancels behind its next call after a call this long.
READ_AHEAD_AFTER_S = 100e-6


class ActorServer:
    """Serves one actor's callers on the main thread."""

    def __init__(
        self,
        runtime: Runtime,
        inbox: queue.SimpleQueue[tuple[Any, ...]],
        wake_r: int,
        wake_w: int,
        start: StartActor,
    ) -> None:
        self.actor_id, self.class_name = start.actor_id, start.class_name
        namespace, restarts = start.namespace, start.restarts
        self.schema: ActorSchema = start.methods
        _context.actor_info = _context.ActorInfo(
            self.actor_id, self.class_name, start.name, namespace, restarts
        )
        self.runtime = runtime
        self.inbox = inbox
        self.wake_r = wake_r
        runtime.namespace = namespace
        self.path = os.path.join(runtime.session_dir, f"a-{self.actor_id}.sock")
        self.selector = selectors.DefaultSelector()
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # A restart reuses the path; the head starts us only once the
        # previous process is reaped, so a file left there is stale.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self.listener.bind(self.path)
        self.listener.listen(128)
        self.started = StartedTable(table_path(runtime.session_dir, self.actor_id, restarts))
        self.slots: dict[socket.socket, int] = {}
        self.connections: dict[socket.socket, FrameReader] = {}
        self.queues: dict[socket.socket, collections.deque[tuple[Any, ...]]] = {}
        self.cancelled: dict[socket.socket, set[int]] = {}
        serial = self.schema.kind is ActorKind.SERIAL
        self.replies = CallReplies(
            self.schema,
            runtime.shm_prefix,
            runtime.events,
            self._exit_from_call,
            self._read_ahead if serial else None,
        )
        self.wake_w = wake_w
        self.methods: dict[str, Any] = {}
        self.draining = False
        self.drain_deadline = 0.0
        self.drain_timer_set = False
        self.loop: Any = None  # an async actor's event loop
        self.exit_request: tuple[ExitKind, socket.socket | None, int | None] | None = None
        #: Why the actor's own code ended it, when not by exit_actor() (sys.exit, ...).
        self.exit_detail = ""
        try:
            self.instance, self.loop = construct_actor(start)
        except BaseException as exc:  # noqa: BLE001 - boundary: report the constructor's error
            text = "".join(traceback.format_exception(exc)).rstrip()
            runtime.send_to_head(ActorFailed(self.actor_id, text))
            close_and_exit(self.connections, 1, run_atexit=False)
        self.executor: Executor | None
        self.call_type: Any  # executors' Call, imported with them
        self.executor, self.call_type = make_executor(
            self.schema, self.replies, self._exit_from_call, self.loop
        )
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        runtime.send_to_head(ActorReady(self.actor_id, self.path))

    def serve(self) -> None:
        """Serve calls until the actor ends; never returns."""
        _context.current_actor = self
        if self.schema.kind is ActorKind.ASYNC:
            self._serve_on_loop(self.executor.io_loop)  # type: ignore[union-attr]
        while True:
            timeout = None
            if self.draining:
                timeout = max(0.0, self.drain_deadline - _now())
            for key, _ in self.selector.select(timeout):
                obj = key.fileobj
                if obj is self.listener:
                    self._accept()
                elif obj == self.wake_r:
                    self._on_head_messages()
                else:
                    assert isinstance(obj, socket.socket)
                    self._on_readable(obj)
                if self.exit_request is not None:
                    end_actor(self)
            if self.exit_request is not None:
                end_actor(self)
            if self.draining and (not self.connections or _now() >= self.drain_deadline):
                self.exit_request = (ExitKind.GRACEFUL, None, None)
                end_actor(self)

    def _serve_on_loop(self, loop: Any) -> None:
        """Serve an async actor from its event loop, on this thread."""
        import asyncio

        self.selector.unregister(self.listener)
        self.selector.unregister(self.wake_r)
        self.loop = loop
        asyncio.set_event_loop(loop)
        loop.add_reader(self.listener.fileno(), self._step, self._accept)
        loop.add_reader(self.wake_r, self._step, self._on_head_messages)
        loop.run_forever()

    def _accept(self) -> None:
        conn, _addr = self.listener.accept()
        self.slots[conn] = self.started.slot_for(conn)
        self.connections[conn] = FrameReader()
        self.queues[conn] = collections.deque()
        self.cancelled[conn] = set()
        self.replies.send_locks[conn] = threading.Lock()
        if self.loop is not None:
            self.loop.add_reader(conn.fileno(), self._step, self._on_readable, conn)
        else:
            self.selector.register(conn, selectors.EVENT_READ, None)

    def _step(self, handler: Any, *args: Any) -> None:
        """Run one loop callback, then end the actor if it asked to (async actors)."""
        handler(*args)
        if self.draining and not self.drain_timer_set:
            self.drain_timer_set = True
            assert self.loop is not None
            self.loop.call_later(DRAIN_TIMEOUT_S, self._step, lambda: None)
        if self.draining and (not self.connections or _now() >= self.drain_deadline):
            self.exit_request = self.exit_request or (ExitKind.GRACEFUL, None, None)
        if self.exit_request is not None:
            end_actor(self)

    def _on_head_messages(self) -> None:
        try:
            os.read(self.wake_r, 4096)
        except BlockingIOError:
            pass
        while True:
            try:
                message = self.inbox.get_nowait()
            except queue.Empty:
                return
            order = decode_order(message)
            if type(order) is Terminate:
                if TerminateMode(order.mode) is TerminateMode.DRAIN:
                    self.draining = True
                    self.drain_deadline = _now() + DRAIN_TIMEOUT_S
                else:
                    self.exit_request = (ExitKind(order.kind), None, None)

    def _on_readable(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(1 << 18)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        self._enqueue(conn, data)
        queue_ = self.queues[conn]
        first = True
        last_read = time.perf_counter()
        while queue_:
            # A serial actor reads what arrived while the last call ran, so
            # that a cancel sent meanwhile is seen before its call starts.
            # After a call of under 100 us it does not look: a read finding
            # nothing costs a system call, 10% of a pipelined call.
            if (
                not first
                and self.executor is None
                and time.perf_counter() - last_read > READ_AHEAD_AFTER_S
            ):
                if not self._read_ahead(conn):
                    return
                last_read = time.perf_counter()
            message = queue_.popleft()
            kind = message[0]
            if kind == CALL:
                first = False
                call_id = message[1]
                if call_id in self.cancelled[conn]:
                    self.cancelled[conn].discard(call_id)
                    name = f"{self.class_name}.{message[2]}"
                    self.replies.send(
                        conn,
                        error_reply(
                            call_id,
                            name,
                            TaskCancelledError(f"the call {name} was cancelled with rigd.cancel"),
                            self.runtime.shm_prefix,
                        ),
                    )
                    continue
                self._run_call(conn, message)
                if self.exit_request is not None:
                    return
            elif kind == CLOSE:
                self._drop(conn)
                return

    def _enqueue(self, conn: socket.socket, data: bytes) -> None:
        """Queue the calls in ``data``; apply its cancels to calls not yet started."""
        queue_ = self.queues[conn]
        for frame in self.connections[conn].feed(data):
            message = loads(frame)
            if message[0] != CANCEL:
                queue_.append(message)
                continue
            call_id = message[1]
            if (conn, call_id) in self.replies.streams:
                self.replies.stream_cancels.add((conn, call_id))
            elif any(m[0] == CALL and m[1] == call_id for m in queue_):
                self.cancelled[conn].add(call_id)
            elif self.executor is not None:
                self.executor.cancel(conn, call_id)
            # else: a serial actor's running or finished call: not interrupted

    def _read_ahead(self, conn: socket.socket) -> bool:
        """Queue what arrived meanwhile; ``False`` if the caller hung up."""
        data = recv_nowait(conn)
        if data is None:
            return True
        if not data:
            self._drop(conn)
            return False
        self._enqueue(conn, data)
        return True

    def _drop(self, conn: socket.socket) -> None:
        if conn not in self.connections:
            return
        if self.loop is not None:
            self.loop.remove_reader(conn.fileno())
        else:
            self.selector.unregister(conn)
        del self.connections[conn]
        del self.queues[conn]
        del self.cancelled[conn]
        self.replies.send_locks.pop(conn, None)
        self.slots.pop(conn, None)
        conn.close()

    def _run_call(self, conn: socket.socket, message: tuple[Any, ...]) -> None:
        call_id, name, args, kwargs, group, task_id = read_call(message)
        slot = self.slots.get(conn, 0)
        if slot:
            self.started.words[slot] = call_id  # before it starts: see _started.py
        if task_id is not None:
            self.runtime.events.record(task_id, TaskState.RUNNING)
            self.replies.task_ids[(conn, call_id)] = task_id
        method = self.methods.get(name)
        if method is None:
            if name in BUILTIN_METHODS:
                self.exit_request = (ExitKind.GRACEFUL, conn, call_id)
                return
            try:
                method = bound_method(self.instance, name)
            except AttributeError as exc:
                self.replies.send(
                    conn,
                    error_reply(call_id, f"{self.class_name}.{name}", exc, self.runtime.shm_prefix),
                )
                return
            self.methods[name] = method
        if self.executor is not None:
            self.executor.submit(
                self.call_type(
                    conn,
                    call_id,
                    f"{self.class_name}.{name}",
                    method,
                    args,
                    kwargs,
                    self.schema.group_of(name, group),
                    task_id or f"{self.actor_id}-{call_id:x}",
                )
            )
            return
        # A plain store, not the context variable: a serial actor runs one call
        # at a time on this thread, and this is the hot path.
        _context.serial_call = (task_id, call_id)
        try:
            result = method(*args, **kwargs)
            if inspect.isgenerator(result) and self.replies.streams_items(name):
                self.replies.stream(conn, call_id, f"{self.class_name}.{name}", result)
                return
        except ActorExit:
            self.exit_request = (ExitKind.EXIT_ACTOR, conn, call_id)
            return
        except Exception as exc:  # noqa: BLE001 - boundary: the error goes to the caller
            self.replies.send(
                conn,
                error_reply(call_id, f"{self.class_name}.{name}", exc, self.runtime.shm_prefix),
            )
            return
        except BaseException as exc:  # noqa: BLE001 - sys.exit, KeyboardInterrupt: the actor ends
            self._exit_from_call(conn, call_id, exc)
            return
        finally:
            _context.serial_call = None
        try:
            body = dumps(reply_ok(call_id, result), self.runtime.shm_prefix)
        except (TypeError, OSError) as exc:
            error = TypeError(
                f"the return value of {self.class_name}.{name} cannot be sent back: {exc}"
            )
            self.replies.send(
                conn,
                error_reply(call_id, f"{self.class_name}.{name}", error, self.runtime.shm_prefix),
            )
            return
        try:
            conn.sendall(pack_frame(body))
        except OSError:
            pass  # the caller is gone; nothing to tell
        if task_id is not None:
            del self.replies.task_ids[(conn, call_id)]
            self.runtime.events.record(task_id, TaskState.FINISHED)

    def _exit_from_call(
        self, conn: socket.socket, call_id: int, exc: BaseException | None = None
    ) -> None:
        """A method called exit_actor() (or raised SystemExit, KeyboardInterrupt, ...).

        The actor ends on the main thread, whichever thread ran the method:
        the call gets ``ActorDiedError`` naming why, and so does every call
        pending or sent later.
        """
        if self.exit_request is not None:
            return  # already ending
        if exc is not None:
            self.exit_detail = why_ended(exc)
        self.exit_request = (ExitKind.EXIT_ACTOR, conn, call_id)
        try:
            os.write(self.wake_w, b"\0")
        except BlockingIOError:
            pass


def _now() -> float:
    return time.monotonic()
