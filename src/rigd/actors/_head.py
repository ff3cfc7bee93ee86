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

Ending the session's workers when it stops is ``_head_shutdown``'s.
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

from rigd.actors import _to_head as t
from rigd.actors._actor_table import ActorTable
from rigd.actors._events import TaskLog
from rigd.actors._from_head import HeadReply
from rigd.actors._head_records import Peer, Worker
from rigd.actors._head_shutdown import end_workers
from rigd.actors._messages import ExitKind
from rigd.actors._placement_groups import PlacementGroups
from rigd.actors._protocol import decode_to_head, encode
from rigd.actors._ref_broker import RefBroker
from rigd.actors._resources import Resources
from rigd.actors._scheduler import TaskScheduler
from rigd.actors._wire import FrameReader, dumps, loads, pack_frame, recv_nowait, sweep_segments
from rigd.actors._worker_pool import WorkerPool
from rigd.gpu import GpuPool

__all__ = ["Head"]

log = logging.getLogger(__name__)


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
            on_freed=self._on_task_freed,
            stopping=self._is_stopping,
        )
        self._refs = RefBroker(self._reply, self._send)
        self._groups = PlacementGroups(
            self.resources, self._reply, self._actors.end_in_group, on_freed=self._on_group_freed
        )
        self._actors.groups = self._groups
        # Requests: handler(caller, request id, record); notices: handler(caller, record).
        self._request_handlers: dict[type, Callable[[Peer, int, Any], None]] = {
            t.CreateActor: self._actors.create,
            t.GetActor: self._on_get_actor,
            t.ActorAddress: lambda c, r, m: self._actors.address(c, r, m.actor_id),
            t.Kill: self._on_kill,
            t.SubmitTask: self._tasks.submit,
            t.DeathReason: lambda c, r, m: self._actors.death(c, r, m.actor_id, m.incarnation),
            t.ListActors: lambda c, r, m: self._reply(c, r, self._actors.rows(), True),
            t.ListTasks: lambda c, r, m: self._reply(c, r, self._task_log.rows(), True),
            t.ResourcesNow: lambda c, r, m: self._reply(c, r, self.resources.now(), True),
            t.RefGet: lambda c, r, m: self._refs.get(c, r, m.ref_id),
            t.CreatePlacementGroup: self._groups.create,
            t.PlacementGroupReady: lambda c, r, m: self._groups.ready(c, r, m.group_id),
            t.RemovePlacementGroup: lambda c, r, m: self._groups.remove(c, r, m.group_id),
            t.PlacementGroupTable: self._groups.table,
        }
        self._notice_handlers: dict[type, Callable[[Peer, Any], None]] = {
            t.Hello: self._on_hello,
            t.CancelTask: lambda c, m: self._tasks.cancel(c, m.task_req_id, m.force),
            t.RefCancel: lambda c, m: self._refs.cancel(m.ref_id, m.force),
            t.RefValue: lambda c, m: self._refs.value(m),
            t.TaskEvents: lambda c, m: self._task_log.add(m.rows),
            t.Acquire: self._on_acquire,
            t.Lend: self._on_lend,
            t.Release: self._on_release,
        }
        # Reports only a worker sends: the handler gets the worker.
        self._worker_handlers: dict[type, Callable[[Worker, Any], None]] = {
            t.ActorReady: lambda w, m: self._actors.ready(m.actor_id, m.path),
            t.ActorFailed: self._on_actor_failed,
            t.Exiting: lambda w, m: self._actors.exiting(w, m.kind, m.detail),
            t.TaskDone: self._tasks.done,
            t.TaskItem: self._tasks.item,
            t.Blocked: lambda w, m: self._tasks.blocked(w),
            t.Unblocked: lambda w, m: self._tasks.unblocked(w),
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
            req_id, record = decode_to_head(loads(frame))
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
        self._send(peer, encode(HeadReply(req_id, ok, payload)))

    def _on_hello(self, peer: Peer, message: t.Hello) -> None:
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
        self._groups.peer_lost(peer)

    def _on_worker_exit(self, worker: Worker) -> None:
        if not self._pool.reap(worker):
            return  # already handled
        self._actors.worker_exited(worker)
        self._tasks.worker_exited(worker)

    def _on_actor_freed(self) -> None:
        if self._groups.reserve_pending():
            self._actors.start_pending()  # actors waiting for a group just reserved
        self._tasks.dispatch()

    def _on_task_freed(self) -> None:
        self._groups.reserve_pending()
        self._actors.start_pending()

    def _on_group_freed(self) -> None:
        self._actors.start_pending()
        self._tasks.dispatch()

    # -- requests and notices that touch more than one owner ------------------------

    def _on_get_actor(self, peer: Peer, req_id: int, message: t.GetActor) -> None:
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

    def _on_kill(self, peer: Peer, req_id: int, message: t.Kill) -> None:
        self._actors.kill(message.actor_id, message.no_restart)
        self._reply(peer, req_id, None, True)

    def _on_actor_failed(self, worker: Worker, message: t.ActorFailed) -> None:
        worker.exit_kind = ExitKind.CONSTRUCTOR_FAILED
        worker.exit_detail = message.error_text

    def _on_acquire(self, peer: Peer, message: t.Acquire) -> None:
        if self._actors.get(message.actor_id) is not None:
            self._actors.handles.acquire(message.actor_id, peer, message.token)

    def _on_lend(self, peer: Peer, message: t.Lend) -> None:
        if self._actors.get(message.actor_id) is not None:
            self._actors.handles.lend(message.actor_id, message.token)

    def _on_release(self, peer: Peer, message: t.Release) -> None:
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
        end_workers(self._actors, self._pool, self._tasks.workers(), self._serve_while_ending)
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

    def _serve_while_ending(self, timeout: float) -> None:
        for key, mask in self._selector.select(timeout):
            if key.fileobj is self._listener or key.fileobj == self._wake_r:
                key.data(key.fileobj)
                continue
            try:
                self._dispatch(key, mask)
            except Exception:
                log.exception("rigd head: error during shutdown")
