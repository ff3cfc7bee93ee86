"""The head: the one place that knows every actor and worker of a session.

It runs on one thread of the process that owns the session (the driver, for
an embedded runtime; the daemon, later). This module is its loop: the
socket every process connects to, timers, sending without blocking, the
dispatch of each control-plane message (``_messages``) to the object that
owns its state, and shutdown. Those objects:

- ``WorkerPool`` (``_worker_pool``): spawning worker processes, spares, reaping;
- ``ActorTable`` (``_actor_table``): each actor's life and restarts, with its
  ``NameRegistry`` (``_names``) and ``HandleCounts`` (``_handle_counts``);
- ``TaskScheduler`` (``_scheduler``): the task queue and task workers;
- ``Resources`` (``_resources``): CPU and GPU accounting for both;
- ``RefBroker`` (``_ref_broker``): borrowed refs between processes.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from rigd.actors import _protocol as p
from rigd.actors._actor_table import ActorTable
from rigd.actors._events import TaskLog
from rigd.actors._head_records import ActorState, Peer, Worker, death_reason
from rigd.actors._messages import ExitKind, TerminateMode
from rigd.actors._ref_broker import RefBroker
from rigd.actors._resources import Resources
from rigd.actors._scheduler import TaskScheduler
from rigd.actors._wire import FrameReader, dumps, loads, pack_frame, recv_nowait, sweep_segments
from rigd.actors._worker_pool import WorkerPool
from rigd.gpu import GpuPool

__all__ = ["Head"]

log = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 5.0


class Head:
    """Serve one session's control plane on a thread of this process.

    Args:
        session_dir: where the socket files live (created by the caller).
        shm_prefix: the prefix of the session's shared-memory segments.
        total_cpus: the CPUs actors and tasks may reserve.
        gpus: the GPUs actors may reserve, and what each has free.
    """

    def __init__(self, session_dir: str, shm_prefix: str, total_cpus: float, gpus: GpuPool) -> None:
        self.session_dir = session_dir
        self.shm_prefix = shm_prefix
        self._path = os.path.join(session_dir, "head.sock")
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self._path)
        self._listener.listen(128)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, self._on_accept)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, self._on_wake)
        self._actions: collections.deque[Callable[[], None]] = collections.deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._timer_ids = itertools.count()
        self._stopping = False
        self._stopped = threading.Event()
        self._task_log = TaskLog()
        self.resources = Resources(total_cpus, gpus)
        self._pool = WorkerPool(
            session_dir, self._send, self._watch, self._unwatch, self._on_pidfd, self._is_stopping
        )
        self._actors = ActorTable(
            session_dir,
            self._pool,
            self.resources,
            self._reply,
            self._after,
            self._task_log,
            on_freed=self._on_actor_freed,
            stopping=self._is_stopping,
        )
        self._tasks = TaskScheduler(
            self._pool,
            self.resources,
            self._reply,
            self._send,
            self._task_log,
            on_freed=self._actors.start_pending,
            stopping=self._is_stopping,
        )
        self._refs = RefBroker(self._reply, self._send)
        # Requests: handler(caller, request id, record); notices: handler(caller, record).
        self._request_handlers: dict[type, Callable[[Peer, int, Any], None]] = {
            p.CreateActor: self._actors.create,
            p.GetActor: self._on_get_actor,
            p.ActorAddress: lambda c, r, m: self._actors.address(c, r, m.actor_id),
            p.Kill: self._on_kill,
            p.SubmitTask: self._tasks.submit,
            p.DeathReason: lambda c, r, m: self._actors.death(c, r, m.actor_id, m.incarnation),
            p.ListActors: lambda c, r, m: self._reply(c, r, self._actors.rows(), True),
            p.ListTasks: lambda c, r, m: self._reply(c, r, self._task_log.rows(), True),
            p.ResourcesNow: lambda c, r, m: self._reply(c, r, self.resources.now(), True),
            p.RefGet: lambda c, r, m: self._refs.get(c, r, m.ref_id),
        }
        self._notice_handlers: dict[type, Callable[[Peer, Any], None]] = {
            p.Hello: self._on_hello,
            p.CancelTask: lambda c, m: self._tasks.cancel(c, m.task_req_id, m.force),
            p.RefCancel: lambda c, m: self._refs.cancel(m.ref_id, m.force),
            p.RefValue: lambda c, m: self._refs.value(m),
            p.TaskEvents: lambda c, m: self._task_log.add(m.rows),
            p.Acquire: self._on_acquire,
            p.Lend: self._on_lend,
            p.Release: self._on_release,
        }
        # Reports only a worker sends: the handler gets the worker.
        self._worker_handlers: dict[type, Callable[[Worker, Any], None]] = {
            p.ActorReady: lambda w, m: self._actors.ready(m.actor_id, m.path),
            p.ActorFailed: self._on_actor_failed,
            p.Exiting: lambda w, m: self._actors.exiting(w, m.kind, m.detail),
            p.TaskDone: self._tasks.done,
            p.TaskItem: self._tasks.item,
            p.Blocked: lambda w, m: self._tasks.blocked(w),
            p.Unblocked: lambda w, m: self._tasks.unblocked(w),
        }
        self._pool.refill()
        self._thread = threading.Thread(target=self._loop, name="rigd-head", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """The path of the head's socket."""
        return self._path

    @property
    def total_cpus(self) -> float:
        """The CPUs actors and tasks may reserve."""
        return self.resources.total_cpus

    @property
    def total_gpus(self) -> float:
        """The GPUs actors and tasks may reserve."""
        return self.resources.total_gpus

    # -- the loop ----------------------------------------------------------------

    def _is_stopping(self) -> bool:
        return self._stopping

    def _loop(self) -> None:
        try:
            while not self._stopping:
                timeout = None
                if self._timers:
                    timeout = max(0.0, self._timers[0][0] - time.monotonic())
                for key, mask in self._selector.select(timeout):
                    try:
                        self._dispatch(key, mask)
                    except Exception:
                        log.exception("rigd head: error while handling a message")
                now = time.monotonic()
                while self._timers and self._timers[0][0] <= now:
                    _, _, action = heapq.heappop(self._timers)
                    action()
            self._stop_everything()
        finally:
            self._stopped.set()

    def _dispatch(self, key: selectors.SelectorKey, mask: int) -> None:
        peer = key.data
        if type(peer) is not Peer:
            key.data(key.fileobj)
            return
        if mask & selectors.EVENT_WRITE:
            self._pump(peer)
        if mask & selectors.EVENT_READ:
            self._on_peer(peer)

    def _after(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_ids), action))

    def _watch(self, fd: int, action: Callable[[], None]) -> None:
        self._selector.register(fd, selectors.EVENT_READ, lambda _f: action())

    def _unwatch(self, fd: int) -> None:
        self._selector.unregister(fd)

    def _on_wake(self, _: object) -> None:
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        while self._actions:
            self._actions.popleft()()

    def call_soon(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the head's thread."""
        self._actions.append(action)
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass

    # -- peers -------------------------------------------------------------------

    def _on_accept(self, _: object) -> None:
        sock, _addr = self._listener.accept()
        peer = Peer(sock)
        self._selector.register(sock, selectors.EVENT_READ, peer)

    def _on_peer(self, peer: Peer) -> None:
        if peer.sock.fileno() < 0:
            return  # lost while its write was handled
        try:
            data = peer.sock.recv(1 << 18)
        except OSError:
            data = b""
        if not data:
            self._on_peer_lost(peer)
            return
        self._handle_frames(peer, peer.reader, data)

    def _handle_frames(self, peer: Peer, reader: FrameReader, data: bytes) -> None:
        for frame in reader.feed(data):
            req_id, record = p.decode_to_head(loads(frame))
            if req_id is not None:
                self._request_handlers[type(record)](peer, req_id, record)
                continue
            handler = self._notice_handlers.get(type(record))
            if handler is not None:
                handler(peer, record)
            elif peer.worker is not None:
                self._worker_handlers[type(record)](peer.worker, record)

    def _send(self, peer: Peer, message: tuple[Any, ...]) -> None:
        peer.send(pack_frame(dumps(message, self.shm_prefix)), self._selector)

    def _pump(self, peer: Peer) -> None:
        peer.pump(self._selector)

    def _reply(self, peer: Peer, req_id: int, payload: Any, ok: bool = True) -> None:
        self._send(peer, p.encode(p.HeadReply(req_id, ok, payload)))

    def _on_hello(self, peer: Peer, message: p.Hello) -> None:
        peer.pid = message.pid
        self._refs.hello(peer)
        if message.worker_id is None:
            return
        worker = self._pool.connect(message.worker_id, peer)
        if worker is None:
            peer.sock.close()
            return
        if not self._pool.is_spare(worker):
            self._tasks.worker_connected(worker)

    def _on_pidfd(self, worker: Worker) -> None:
        peer = worker.peer
        if peer is not None:
            # Read what it sent before dying (EXITING, ACTOR_FAILED) first.
            while data := recv_nowait(peer.sock):
                self._handle_frames(peer, peer.reader, data)
            self._on_peer_lost(peer)
        else:
            self._on_worker_exit(worker)

    def _on_peer_lost(self, peer: Peer) -> None:
        if peer.sock.fileno() < 0:
            return  # already handled (EOF and pidfd both report one death)
        self._selector.unregister(peer.sock)
        peer.sock.close()
        self._refs.peer_lost(peer)
        if peer.worker is not None:
            self._on_worker_exit(peer.worker)
        self._actors.peer_lost(peer)

    def _on_worker_exit(self, worker: Worker) -> None:
        if not self._pool.reap(worker):
            return  # already handled
        self._actors.worker_exited(worker)
        self._tasks.worker_exited(worker)

    def _on_actor_freed(self) -> None:
        self._tasks.dispatch()

    # -- requests and notices that touch more than one owner ------------------------

    def _on_get_actor(self, peer: Peer, req_id: int, message: p.GetActor) -> None:
        actor = self._actors.names.lookup(message.namespace, message.name)
        if actor is None:
            name, namespace = message.name, message.namespace
            error = ValueError(  # Ray's opening words: ported code matches them
                f"Failed to look up actor with name {name!r} in namespace {namespace!r}: "
                f"there is none; create it with "
                f".options(name={name!r}).remote(), or look in another namespace"
            )
            self._reply(peer, req_id, error, False)
            return
        self._reply(peer, req_id, self._actors.handle_info(actor), True)

    def _on_kill(self, peer: Peer, req_id: int, message: p.Kill) -> None:
        self._actors.kill(message.actor_id, message.no_restart)
        self._reply(peer, req_id, None, True)

    def _on_actor_failed(self, worker: Worker, message: p.ActorFailed) -> None:
        worker.exit_kind = ExitKind.CONSTRUCTOR_FAILED
        worker.exit_detail = message.error_text

    def _on_acquire(self, peer: Peer, message: p.Acquire) -> None:
        if self._actors.get(message.actor_id) is not None:
            self._actors.handles.acquire(message.actor_id, peer, message.token)

    def _on_lend(self, peer: Peer, message: p.Lend) -> None:
        if self._actors.get(message.actor_id) is not None:
            self._actors.handles.lend(message.actor_id, message.token)

    def _on_release(self, peer: Peer, message: p.Release) -> None:
        actor = self._actors.get(message.actor_id)
        if actor is not None:
            self._actors.handles.release(actor.actor_id, peer)
            self._actors.maybe_collect(actor)

    # -- shutdown -------------------------------------------------------------------------

    def stop(self) -> None:
        """End every worker, remove the session's files; block until done."""
        if self._thread is threading.current_thread():
            raise RuntimeError("Head.stop() cannot run on the head's own thread")

        def begin() -> None:
            self._stopping = True

        self.call_soon(begin)
        self._stopped.wait()
        self._thread.join()

    def _stop_everything(self) -> None:
        shutdown = p.encode(p.Terminate(TerminateMode.PROMPT.value, ExitKind.SHUTDOWN.value))
        for actor in self._actors:
            if actor.state in (ActorState.STARTING, ActorState.ALIVE) and actor.worker:
                if actor.worker.exit_kind is None:
                    actor.worker.exit_kind = ExitKind.SHUTDOWN
                self._pool.send(actor.worker, shutdown)
        for worker in [*self._tasks.workers(), *self._pool.spares()]:
            self._pool.send(worker, shutdown)
        # Keep serving while workers end: one still starting must get its
        # backlog (its job, then TERMINATE) to end cleanly.
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while time.monotonic() < deadline and any(w.popen.poll() is None for w in self._pool.all()):
            for key, mask in self._selector.select(0.01):
                if key.fileobj is self._listener or key.fileobj == self._wake_r:
                    key.data(key.fileobj)
                    continue
                try:
                    self._dispatch(key, mask)
                except Exception:
                    log.exception("rigd head: error during shutdown")
        for worker in self._pool.all():
            if worker.popen.poll() is None:
                log.warning(
                    "worker %s (pid %d) did not end within %.0f s of shutdown; killed",
                    worker.worker_id,
                    worker.popen.pid,
                    SHUTDOWN_GRACE_S,
                )
                worker.popen.kill()
            worker.popen.wait()
        for actor in self._actors:
            self._actors.dead(actor, death_reason(actor, ExitKind.SHUTDOWN, ""))
        for key in list(self._selector.get_map().values()):
            obj = key.fileobj
            if isinstance(obj, socket.socket):
                obj.close()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        try:
            os.unlink(self._path)
        except FileNotFoundError:
            pass
        sweep_segments(self.shm_prefix)
