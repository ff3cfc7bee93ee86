"""The program every actor and task worker runs: ``python -m rigd.actors._worker``.

The head starts it with exec (never fork), so the environment the head chose
(``CUDA_VISIBLE_DEVICES`` above all) is in place before any user code or CUDA
library loads. The process then waits for its job from the head: one actor
(``START_ACTOR``) for its whole life, or tasks (``RUN_TASK``) one at a time.

An actor serves its callers on the main thread: it reads a call, runs the
method inline and writes the reply, with no hand-off between threads, which
is what makes a round trip cost tens of microseconds. Its calls to other
actors go through the process's ``Runtime`` and its I/O thread.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import ctypes
import inspect
import logging
import os
import pickle
import queue
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import cloudpickle

from rigd._exceptions import ActorDiedError, RigdError, TaskCancelledError, TaskError
from rigd._proc import pid_alive
from rigd.actors import _context, _session
from rigd.actors._context import ActorExit
from rigd.actors._events import TaskState
from rigd.actors._gui import main_loop_of, serve_beside
from rigd.actors._messages import ExitKind, Msg, TerminateMode
from rigd.actors._runtime import Runtime, error_reply
from rigd.actors._schema import BUILTIN_METHODS, ActorKind, ActorSchema
from rigd.actors._started import StartedTable, table_path

if TYPE_CHECKING:
    from rigd.actors._executors import Executor
from rigd.actors._wire import (
    FrameReader,
    dumps,
    loads,
    pack_frame,
    recv_nowait,
    release_send_pools,
)

log = logging.getLogger("rigd.worker")

_CALL = int(Msg.CALL)
_CANCEL = int(Msg.CANCEL)
_REPLY_ITEM = int(Msg.REPLY_ITEM)
_REPLY_END = int(Msg.REPLY_END)
_REPLY_ERR = int(Msg.REPLY_ERR)
_FINAL_REPLIES = (int(Msg.REPLY_OK), _REPLY_ERR, _REPLY_END)
_CLOSE = int(Msg.CLOSE)
_REPLY_OK = int(Msg.REPLY_OK)
_PR_SET_PDEATHSIG = 1
# __rigd_shutdown__ may take this long before the process exits anyway.
SHUTDOWN_HOOK_TIMEOUT_S = 30.0
# A draining actor waits this long for its callers to close their sockets.
DRAIN_TIMEOUT_S = 30.0
# How long a SIGTERM waits to tell a dying head from a plain SIGTERM.
PARENT_EXIT_WAIT_S = 2.0
# A serial actor looks for cancels behind its next call after a call this long.
READ_AHEAD_AFTER_S = 100e-6


def _die_with_parent(session_dir: str, parent_pid: int) -> None:
    """End this worker when the head's process ends, even by SIGKILL.

    The kernel sends SIGTERM when the thread that spawned us (the head's)
    ends (PR_SET_PDEATHSIG). That thread can end a moment before the rest of
    its process, so the handler waits, briefly, for the process itself to be
    gone, removes the session's files the dead head could not, and exits. If
    the process stays alive, the SIGTERM came from someone else and keeps its
    usual meaning. The lost connection to the head ends the worker too, from
    its I/O thread, should the main thread be busy in native code.
    """

    def on_sigterm(signum: int, frame: object) -> None:
        deadline = time.monotonic() + PARENT_EXIT_WAIT_S
        while time.monotonic() < deadline:
            if not pid_alive(parent_pid):
                _session.cleanup_after_lost_head(
                    session_dir, os.path.basename(session_dir) + "-", owner_dead=True
                )
                os._exit(1)
            time.sleep(0.002)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the lost head connection still ends us
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died before prctl took effect


class _ActorServer:
    """Serves one actor's callers on the main thread."""

    def __init__(
        self,
        runtime: Runtime,
        inbox: queue.SimpleQueue[tuple[Any, ...]],
        wake_r: int,
        wake_w: int,
        start: tuple[Any, ...],
    ) -> None:
        _, self.actor_id, self.class_name, cls_body, args_body, namespace, schema = start[:7]
        name, restarts = start[7:]
        self.schema: ActorSchema = schema
        _context.actor_info = _context.ActorInfo(
            self.actor_id, self.class_name, name, namespace, restarts
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
        self.send_locks: dict[socket.socket, threading.Lock] = {}
        # Calls that record task events, until their final reply leaves.
        self.task_ids: dict[tuple[socket.socket, int], str] = {}
        # Generator methods sending items, and those a cancel came for.
        self.streams: set[tuple[socket.socket, int]] = set()
        self.stream_cancels: set[tuple[socket.socket, int]] = set()
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
            if os.environ.get(_session.GPU_IDS_ENV):
                # A GPU actor: make sure CUDA's devices are the GPUs assigned
                # (NVML and CUDA number them differently) before it runs.
                from rigd.gpu import check_visible_devices

                check_visible_devices()
            cls = pickle.loads(cls_body)
            args, kwargs = loads(args_body)
            if self.schema.kind is ActorKind.ASYNC:
                # The constructor sees the loop its default group's calls run
                # on (asyncio.get_event_loop() there is that loop, as in Ray).
                import asyncio

                self.loop = asyncio.new_event_loop()
                asyncio.set_event_loop(self.loop)
            self.instance = cls(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - boundary: report the constructor's error
            text = "".join(traceback.format_exception(exc)).rstrip()
            runtime.send_to_head((int(Msg.ACTOR_FAILED), self.actor_id, text))
            self._close_and_exit(1, run_atexit=False)
        self.executor: Executor | None = None
        self.call_type: Any = None  # executors' Call, imported with them
        if self.schema.kind is not ActorKind.SERIAL:
            # Imported only here: asyncio and concurrent.futures take 40 ms to
            # import, most of a serial actor's start-up.
            from rigd.actors._executors import AsyncExecutor, Call, ThreadedExecutor

            self.call_type = Call
        if self.schema.kind is ActorKind.THREADED:
            self.executor = ThreadedExecutor(self.schema, self._reply, self._exit_from_call)
        elif self.schema.kind is ActorKind.ASYNC:
            # The event loop runs on this (the main) thread: a call goes from
            # the socket to its task with no hand-off between threads.
            self.executor = AsyncExecutor(
                self.schema, self._reply, self._exit_from_call, self._send, self.loop
            )
        self.selector.register(self.listener, selectors.EVENT_READ, None)
        self.selector.register(wake_r, selectors.EVENT_READ, None)
        runtime.send_to_head((int(Msg.ACTOR_READY), self.actor_id, self.path))

    def serve(self) -> None:
        """Serve calls until the actor ends; never returns."""
        _context.current_actor = self
        if self.schema.kind is ActorKind.ASYNC:
            self._serve_on_loop(self.executor.loop)  # type: ignore[union-attr]
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
                    self._finish()
            if self.exit_request is not None:
                self._finish()
            if self.draining and (not self.connections or _now() >= self.drain_deadline):
                self.exit_request = (ExitKind.GRACEFUL, None, None)
                self._finish()

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
        self.send_locks[conn] = threading.Lock()
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
            self._finish()

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
            if message[0] == Msg.TERMINATE:
                mode = TerminateMode(message[1])
                if mode is TerminateMode.DRAIN:
                    self.draining = True
                    self.drain_deadline = _now() + DRAIN_TIMEOUT_S
                else:
                    self.exit_request = (ExitKind(message[2]), None, None)

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
            if kind == _CALL:
                first = False
                call_id = message[1]
                if call_id in self.cancelled[conn]:
                    self.cancelled[conn].discard(call_id)
                    name = f"{self.class_name}.{message[2]}"
                    self._send(
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
            elif kind == _CLOSE:
                self._drop(conn)
                return

    def _enqueue(self, conn: socket.socket, data: bytes) -> None:
        """Queue the calls in ``data``; apply its cancels to calls not yet started."""
        queue_ = self.queues[conn]
        for frame in self.connections[conn].feed(data):
            message = loads(frame)
            if message[0] != _CANCEL:
                queue_.append(message)
                continue
            call_id = message[1]
            if (conn, call_id) in self.streams:
                self.stream_cancels.add((conn, call_id))
            elif any(m[0] == _CALL and m[1] == call_id for m in queue_):
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
        self.send_locks.pop(conn, None)
        self.slots.pop(conn, None)
        conn.close()

    def _run_call(self, conn: socket.socket, message: tuple[Any, ...]) -> None:
        _, call_id, name, args, kwargs, group, task_id = message
        slot = self.slots.get(conn, 0)
        if slot:
            self.started.words[slot] = call_id  # before it starts: see _started.py
        if task_id is not None:
            self.runtime.events.record(task_id, TaskState.RUNNING)
            self.task_ids[(conn, call_id)] = task_id
        method = self.methods.get(name)
        if method is None:
            if name in BUILTIN_METHODS:
                self.exit_request = (ExitKind.GRACEFUL, conn, call_id)
                return
            try:
                method = _bound_method(self.instance, name)
            except AttributeError as exc:
                self._send(
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
            if inspect.isgenerator(result) and self._streams(name):
                self._stream(conn, call_id, f"{self.class_name}.{name}", result)
                return
        except ActorExit:
            self.exit_request = (ExitKind.EXIT_ACTOR, conn, call_id)
            return
        except Exception as exc:  # noqa: BLE001 - boundary: the error goes to the caller
            self._send(
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
            body = dumps((_REPLY_OK, call_id, result), self.runtime.shm_prefix)
        except (TypeError, OSError) as exc:
            error = TypeError(
                f"the return value of {self.class_name}.{name} cannot be sent back: {exc}"
            )
            self._send(
                conn,
                error_reply(call_id, f"{self.class_name}.{name}", error, self.runtime.shm_prefix),
            )
            return
        try:
            conn.sendall(pack_frame(body))
        except OSError:
            pass  # the caller is gone; nothing to tell
        if task_id is not None:
            del self.task_ids[(conn, call_id)]
            self.runtime.events.record(task_id, TaskState.FINISHED)

    def _streams(self, method: str) -> bool:
        """Whether a call's generator result streams: only a generator method's does.

        A plain method that returns a generator object returns a value, as in
        Ray; it cannot be pickled, and the caller gets that ``TypeError``.
        """
        spec = self.schema.methods.get(method)
        return spec is not None and spec.is_generator

    def _send(self, conn: socket.socket, message: tuple[Any, ...]) -> None:
        if self.task_ids and message[0] in _FINAL_REPLIES:
            task_id = self.task_ids.pop((conn, message[1]), None)
            if task_id is not None:
                if message[0] == _REPLY_ERR:
                    error = message[2][1].rsplit(".", 1)[-1]
                    self.runtime.events.record(task_id, TaskState.FAILED, error=error)
                else:
                    self.runtime.events.record(task_id, TaskState.FINISHED)
        frame = pack_frame(dumps(message, self.runtime.shm_prefix))
        lock = self.send_locks.get(conn)
        try:
            if lock is None:
                conn.sendall(frame)
            else:
                with lock:
                    conn.sendall(frame)
        except OSError:
            pass

    def _stream(
        self, conn: socket.socket, call_id: int, function_name: str, items: Iterator[Any]
    ) -> None:
        """Send a generator method's items as they come, then the end (any thread).

        A cancel stops the generator at its next item (Ray's rule for
        streaming calls): a serial actor looks for one between items.
        """
        key = (conn, call_id)
        self.streams.add(key)
        try:
            for item in items:
                self._send(conn, (_REPLY_ITEM, call_id, item))
                if self.executor is None:
                    self._read_ahead(conn)
                if key in self.stream_cancels:
                    self.stream_cancels.discard(key)
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()
                    raise TaskCancelledError(f"the call {function_name} was cancelled")
        except ActorExit:
            self._exit_from_call(conn, call_id)
            return
        except Exception as exc:  # noqa: BLE001 - boundary: the error ends the stream
            self._send(conn, error_reply(call_id, function_name, exc, self.runtime.shm_prefix))
            return
        except BaseException as exc:  # noqa: BLE001 - sys.exit, KeyboardInterrupt: the actor ends
            self._exit_from_call(conn, call_id, exc)
            return
        finally:
            self.streams.discard(key)
            self.stream_cancels.discard(key)
        self._send(conn, (_REPLY_END, call_id))

    def _reply(
        self,
        conn: socket.socket,
        call_id: int,
        function_name: str,
        result: Any,
        error: BaseException | None,
    ) -> None:
        """Answer a call from an executor's thread."""
        method = function_name.rsplit(".", 1)[-1]
        if error is None and inspect.isgenerator(result) and self._streams(method):
            self._stream(conn, call_id, function_name, result)
            return
        if error is None:
            try:
                self._send(conn, (_REPLY_OK, call_id, result))
                return
            except (TypeError, OSError) as exc:
                error = TypeError(f"the return value of {function_name} cannot be sent back: {exc}")
        self._send(conn, error_reply(call_id, function_name, error, self.runtime.shm_prefix))

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
            self.exit_detail = _why_ended(exc)
        self.exit_request = (ExitKind.EXIT_ACTOR, conn, call_id)
        try:
            os.write(self.wake_w, b"\0")
        except BlockingIOError:
            pass

    def _finish(self) -> None:
        """End the actor: tell the head, hook, reply, close, exit."""
        assert self.exit_request is not None
        kind, conn, call_id = self.exit_request
        # First: the head frees the actor's name at once, so no get_actor or
        # get_if_exists hands out this actor while its hook runs.
        self.runtime.send_to_head((int(Msg.EXITING), kind.value, self.exit_detail))
        if self.loop is not None:
            self.loop.remove_reader(self.listener.fileno())
        else:
            self.selector.unregister(self.listener)
        self.listener.close()
        os.unlink(self.path)
        if self.executor is not None:
            self.executor.shutdown(SHUTDOWN_HOOK_TIMEOUT_S)
        _run_shutdown_hook(self.instance, self.class_name)
        if conn is not None and call_id is not None:
            if kind is ExitKind.EXIT_ACTOR:
                why = self.exit_detail or "exited by calling rigd.actor.exit_actor()"
                error = ActorDiedError(f"The actor {self.class_name} ({self.actor_id}) {why}")
                self._send(
                    conn,
                    error_reply(
                        call_id, f"{self.class_name}.exit_actor", error, self.runtime.shm_prefix
                    ),
                )
            else:
                self._send(conn, (_REPLY_OK, call_id, None))
        self._close_and_exit(0, run_atexit=True)

    def _close_and_exit(self, code: int, run_atexit: bool) -> None:
        for conn in list(self.connections):
            conn.close()
        if run_atexit:
            atexit._run_exitfuncs()
        release_send_pools()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _why_ended(exc: BaseException) -> str:
    """Why an actor's own code ended it, in words, for ``ActorDiedError``."""
    if isinstance(exc, SystemExit):
        return f"exited: a method raised SystemExit (sys.exit({exc.code!r}))"
    if isinstance(exc, KeyboardInterrupt):
        return "exited: a method raised KeyboardInterrupt"
    return f"exited: a method raised {type(exc).__name__}: {exc}"


def _run_shutdown_hook(instance: object, class_name: str) -> None:
    hook = getattr(instance, "__rigd_shutdown__", None)
    if hook is None:
        return

    def run() -> None:
        try:
            hook()
        except Exception:
            log.exception("%s.__rigd_shutdown__ raised; the actor exits anyway", class_name)

    thread = threading.Thread(target=run, name="rigd-shutdown-hook", daemon=True)
    thread.start()
    thread.join(SHUTDOWN_HOOK_TIMEOUT_S)
    if thread.is_alive():
        log.error(
            "%s.__rigd_shutdown__ did not return within %.0f s; the actor exits anyway",
            class_name,
            SHUTDOWN_HOOK_TIMEOUT_S,
        )


def _serve_tasks(
    runtime: Runtime, inbox: queue.SimpleQueue[tuple[Any, ...]], first: tuple[Any, ...]
) -> None:
    functions: dict[str, Any] = {}
    message = first
    while True:
        if message[0] == Msg.TERMINATE:
            runtime.send_to_head((int(Msg.EXITING), ExitKind.SHUTDOWN.value, ""))
            release_send_pools()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        (_, task_id, fn_id, fn_body, name, body, streaming, namespace, retry, retries, items) = (
            message
        )
        runtime.namespace = namespace
        _context.current_task = task_id
        try:
            fn = functions.get(fn_id)
            if fn is None:
                fn = functions[fn_id] = pickle.loads(fn_body)
            if task_id in _cancelled_tasks:
                raise KeyboardInterrupt  # cancelled before it started here
            sent = [items]  # a generator's items sent, over its attempts
            while True:
                try:
                    reply = _run_task(runtime, fn, body, task_id, name, streaming, sent)
                    break
                except Exception as exc:
                    if retries != 0 and _retryable(exc, retry):
                        retries -= 1
                        log.info("task %s raised %r; retrying it (retry_exceptions)", name, exc)
                        continue
                    raise
        except KeyboardInterrupt as exc:
            if task_id not in _cancelled_tasks:
                raise  # not a cancel: the worker ends, and the head retries the task
            _cancelled_tasks.discard(task_id)
            cancel = TaskCancelledError(f"the task {name} was cancelled with rigd.cancel")
            cancel.__cause__ = exc
            prefix = runtime.shm_prefix
            reply = dumps(error_reply(task_id, name, cancel, prefix), prefix)
        except Exception as exc:  # noqa: BLE001 - boundary: the error goes to the submitter
            reply = dumps(error_reply(task_id, name, exc, runtime.shm_prefix), runtime.shm_prefix)
        finally:
            _context.current_task = None
        runtime.send_to_head((int(Msg.TASK_DONE), task_id, reply))
        message = inbox.get()


def _run_task(
    runtime: Runtime,
    fn: Any,
    body: bytes,
    task_id: int,
    name: str,
    streaming: bool,
    sent: list[int],
) -> bytes:
    """Run one task; return its reply (items of a generator task go as they come).

    ``sent[0]`` counts the items sent: a retried generator runs again from
    its start, and the items its caller already has are not sent twice (Ray's
    rule for retried streaming generators).
    """
    args, kwargs = loads(body)
    result = fn(*args, **kwargs)
    if inspect.isasyncgen(result):
        result = _step_async(result)
    if inspect.isgenerator(result) and not streaming:
        raise TypeError(
            f"the task {name} returned a generator object, which cannot be sent "
            "back; make it a generator function (yield), or pass "
            "num_returns='streaming'"
        )
    if inspect.isgenerator(result):
        for index, item in enumerate(result):
            if index < sent[0]:
                continue
            item_body = dumps((_REPLY_ITEM, task_id, item), runtime.shm_prefix)
            runtime.send_to_head((int(Msg.TASK_ITEM), task_id, item_body))
            sent[0] += 1
        return dumps((_REPLY_END, task_id), runtime.shm_prefix)
    return dumps((_REPLY_OK, task_id, result), runtime.shm_prefix)


def _retryable(exc: BaseException, retry: bool | tuple[type[BaseException], ...]) -> bool:
    if isinstance(exc, RigdError) and not isinstance(exc, TaskError):
        return False  # rigd's own (a cancel, a dead actor): not the function's failure
    if isinstance(retry, tuple):
        return isinstance(exc, retry)
    return bool(retry)


#: Tasks a cancel came for (added on the I/O thread, read by the main thread).
_cancelled_tasks: set[int] = set()


def _on_task_cancel(message: tuple[Any, ...]) -> bool:
    """Interrupt the task a ``CANCEL_TASK`` names (I/O thread); True if handled."""
    if message[0] != Msg.CANCEL_TASK:
        return False
    _cancelled_tasks.add(message[1])
    if _context.current_task == message[1]:
        # The handler runs on the main thread between bytecodes, and wakes
        # it from a blocking wait (rigd.get, a lock, a sleep) as Ctrl-C would.
        os.kill(os.getpid(), signal.SIGINT)
    return True


def _on_sigint(signum: int, frame: object) -> None:
    """Raise KeyboardInterrupt in a task being cancelled; ignore Ctrl-C otherwise."""
    if _context.current_task in _cancelled_tasks:
        raise KeyboardInterrupt


def _step_async(agen: Any) -> Iterator[Any]:
    """Yield an async generator task's items as it makes them, on a private loop."""
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.close()


def _now() -> float:
    return time.monotonic()


def main(argv: list[str]) -> None:
    """Run a worker: ``session_dir worker_id parent_pid``."""
    session_dir, worker_id, parent_pid = argv[1], argv[2], int(argv[3])
    _die_with_parent(session_dir, parent_pid)
    # Ctrl-C in a terminal reaches the whole process group; the driver owns
    # the decision to stop, so workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format=f"rigd worker {worker_id}: %(message)s")
    inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)

    def on_head_message(message: tuple[Any, ...]) -> None:
        if _on_task_cancel(message):
            return
        inbox.put(message)
        try:
            os.write(wake_w, b"\0")
        except BlockingIOError:
            pass

    try:
        runtime = Runtime(
            session_dir,
            shm_prefix=os.path.basename(session_dir) + "-",
            namespace="",
            totals={},
            worker_id=worker_id,
            on_head_message=on_head_message,
        )
    except (FileNotFoundError, ConnectionRefusedError):
        # The session ended while this worker was starting (its driver was
        # killed, or shut down): there is nothing to serve.
        os._exit(1)
    _session.attach_worker(runtime)
    first = inbox.get()
    if first[0] == Msg.START_ACTOR:
        server = _ActorServer(runtime, inbox, wake_r, wake_w, first)
        main_loop = main_loop_of(server.instance)  # a GUI actor takes the main thread
        if main_loop is None:
            server.serve()
        else:
            serve_beside(server.serve, main_loop)
    else:
        signal.signal(signal.SIGINT, _on_sigint)
        _serve_tasks(runtime, inbox, first)


def _bound_method(instance: Any, name: str) -> Any:
    """The class's method ``name`` bound to ``instance``, as Ray finds it.

    Looked up on the class, so an instance attribute of the same name (set
    in ``__init__``, say) does not hide the method from its callers.
    """
    member = inspect.getattr_static(type(instance), name, None)
    if inspect.isfunction(member):
        return types.MethodType(member, instance)
    return getattr(instance, name)


# cloudpickle registers reducers that plain pickle.loads relies on for
# classes sent by value; importing it here makes that explicit.
_ = cloudpickle

if __name__ == "__main__":
    main(sys.argv)
