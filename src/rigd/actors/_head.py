"""The head: the one place that knows every actor and worker of a session.

It runs on one thread of the process that owns the session (the driver, for
an embedded runtime; the daemon, later) and owns everything with a lifetime:

- spawning worker processes (exec'd fresh, never forked) and reaping them;
- where each actor listens, and why it died;
- names and namespaces;
- who holds a handle to which actor, so that an actor whose handles are all
  gone is terminated, and one whose creator died dies too;
- CPU accounting, and the queue of tasks for the pool of task workers.

Handle accounting: a process sends ``ACQUIRE(actor, token)`` when it builds a
handle from a token and ``RELEASE(actor)`` when its last handle dies. Tokens
cover handles in flight: the head issues one with every ``CREATE_ACTOR`` and
``GET_ACTOR`` reply, and a process pickling a handle sends ``LEND(actor,
token)`` first, on the same ordered connection as its later ``RELEASE``. An
actor is collected when no process holds it and no token is outstanding.
"""

from __future__ import annotations

import collections
import contextlib
import heapq
import itertools
import logging
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from rigd._exceptions import (
    ActorDiedError,
    OwnerDiedError,
    ResourceUnavailableError,
    TaskCancelledError,
    WorkerCrashedError,
)
from rigd.actors._events import TaskLog, TaskState
from rigd.actors._messages import ExitKind, Msg, TerminateMode
from rigd.actors._options import ActorOptions
from rigd.actors._session import GPU_IDS_ENV
from rigd.actors._started import table_path
from rigd.actors._wire import (
    FrameReader,
    dumps,
    loads,
    pack_frame,
    recv_nowait,
    sweep_segments,
)
from rigd.gpu._inventory import SIMULATED_GPUS_ENV, GpuInfo
from rigd.gpu._placement import GpuPool

__all__ = ["Head"]

log = logging.getLogger(__name__)

# How long a prompt termination (shutdown, a dead creator) may take before
# the process is killed: the call in progress plus __rigd_shutdown__.
PROMPT_KILL_AFTER_S = 35.0
SHUTDOWN_GRACE_S = 5.0
# Spare workers kept started, so an actor or task starts in about a
# millisecond instead of the 80-110 ms a Python process takes to start and
# import rigd on a 2-core machine. Each spare costs about 25 MB and no CPU.
SPARE_WORKERS = 2
# Dead actors the head remembers (their death reason, for callers that ask
# late, and for list_actors); older ones are forgotten, so a daemon that
# creates and ends actors for months holds bounded memory. Ray keeps a
# similar cap of destroyed actors.
MAX_DEAD_ACTORS = 1000


class ActorState(Enum):
    """Where an actor is in its life, as the head sees it."""

    PENDING = "pending"  # waiting for resources
    STARTING = "starting"  # process spawned, constructor not done
    ALIVE = "alive"
    DEAD = "dead"


@dataclass(eq=False, slots=True)
class _Peer:
    """One process connected to the head."""

    sock: socket.socket
    reader: FrameReader = field(default_factory=FrameReader)
    pid: int = 0
    worker: _Worker | None = None
    # What the peer's socket did not take yet. The head never blocks sending:
    # one peer that does not read (stopped, or busy) must not wedge the
    # session, and a peer blocked sending to the head must still be read.
    wbuf: collections.deque[bytes | memoryview] = field(default_factory=collections.deque)


@dataclass(eq=False, slots=True)
class _Worker:
    worker_id: str
    popen: subprocess.Popen[bytes]
    peer: _Peer | None = None
    backlog: list[tuple[Any, ...]] = field(default_factory=list)
    actor: _Actor | None = None
    task: _Task | None = None
    blocked: bool = False
    exit_kind: ExitKind | None = None
    exit_detail: str = ""
    pidfd: int | None = None
    allow_restart: bool = False
    #: Runs one GPU task, then ends (its CUDA context holds the GPU).
    gpu_task: bool = False


@dataclass(eq=False, slots=True)
class _Actor:
    actor_id: str
    class_name: str
    methods: tuple[Any, ...]
    options: ActorOptions
    namespace: str
    start_message: tuple[Any, ...]
    creator: _Peer | None
    state: ActorState = ActorState.PENDING
    address: str | None = None
    worker: _Worker | None = None
    holders: set[_Peer] = field(default_factory=set)
    tokens: dict[str, int] = field(default_factory=dict)
    address_waiters: list[tuple[_Peer, int]] = field(default_factory=list)
    death_waiters: list[tuple[_Peer, int]] = field(default_factory=list)
    death_reason: str | None = None
    terminating: bool = False
    cpus: float = 0.0
    restarts: int = 0
    gpus: tuple[GpuInfo, ...] = ()


@dataclass(eq=False, slots=True)
class _Task:
    task_id: int
    submitter: _Peer
    req_id: int
    fn_id: str
    fn_body: bytes
    name: str
    body: bytes
    num_cpus: float
    retries_left: int
    event_id: str | None = None
    num_gpus: float = 0.0
    gpus: tuple[GpuInfo, ...] = ()
    streaming: bool = False
    namespace: str = ""
    retry_exceptions: Any = False
    #: A generator task's items delivered: a retry (its worker died) skips them.
    items_sent: int = 0


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
        self.total_cpus = total_cpus
        self._gpus = gpus
        self.total_gpus = gpus.total
        self._cpus_free = total_cpus
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
        self._actors: dict[str, _Actor] = {}
        self._names: dict[tuple[str, str], _Actor] = {}
        self._workers: dict[str, _Worker] = {}
        self._pending_actors: collections.deque[_Actor] = collections.deque()
        self._dead_actors: collections.deque[str] = collections.deque()
        self._tasks: collections.deque[_Task] = collections.deque()
        self._task_ids = itertools.count(1)
        self._task_workers: list[_Worker] = []
        self._idle_task_workers: list[_Worker] = []
        self._worker_ids = itertools.count(1)
        self._spares: list[_Worker] = []
        self._task_log = TaskLog()
        self._stopping = False
        self._stopped = threading.Event()
        self._handlers: dict[int, Callable[[_Peer, tuple[Any, ...]], None]] = {
            Msg.HELLO: self._on_hello,
            Msg.CREATE_ACTOR: self._on_create_actor,
            Msg.GET_ACTOR: self._on_get_actor,
            Msg.ACTOR_ADDRESS: self._on_actor_address,
            Msg.KILL: self._on_kill,
            Msg.SUBMIT_TASK: self._on_submit_task,
            Msg.CANCEL_TASK: self._on_cancel_task,
            Msg.TASK_EVENTS: self._on_task_events,
            Msg.LIST_TASKS: self._on_list_tasks,
            Msg.DEATH_REASON: self._on_death_reason,
            Msg.LIST_ACTORS: self._on_list_actors,
            Msg.ACQUIRE: self._on_acquire,
            Msg.RELEASE: self._on_release,
            Msg.LEND: self._on_lend,
            Msg.BLOCKED: self._on_blocked,
            Msg.UNBLOCKED: self._on_unblocked,
            Msg.ACTOR_READY: self._on_actor_ready,
            Msg.ACTOR_FAILED: self._on_actor_failed,
            Msg.TASK_DONE: self._on_task_done,
            Msg.TASK_ITEM: self._on_task_item,
            Msg.EXITING: self._on_exiting,
            Msg.REF_GET: self._on_ref_get,
            Msg.REF_VALUE: self._on_ref_value,
            Msg.REF_CANCEL: self._on_ref_cancel,
        }
        # Borrowed refs: token -> (borrower, its request id, the owner).
        self._ref_requests: dict[int, tuple[_Peer, int, _Peer]] = {}
        self._ref_tokens = itertools.count(1)
        self._peers_by_pid: dict[int, _Peer] = {}
        self._refill_spares()
        self._thread = threading.Thread(target=self._loop, name="rigd-head", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """The path of the head's socket."""
        return self._path

    # -- the loop ----------------------------------------------------------------

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
        if type(peer) is not _Peer:
            key.data(key.fileobj)
            return
        if mask & selectors.EVENT_WRITE:
            self._pump(peer)
        if mask & selectors.EVENT_READ:
            self._on_peer(peer)

    def _after(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_ids), action))

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

    def _on_accept(self, _: object) -> None:
        sock, _addr = self._listener.accept()
        peer = _Peer(sock)
        self._selector.register(sock, selectors.EVENT_READ, peer)

    def _on_peer(self, peer: _Peer) -> None:
        if peer.sock.fileno() < 0:
            return  # lost while its write was handled
        try:
            data = peer.sock.recv(1 << 18)
        except OSError:
            data = b""
        if not data:
            self._on_peer_lost(peer)
            return
        for frame in peer.reader.feed(data):
            message = loads(frame)
            self._handlers[message[0]](peer, message)

    def _send(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        frame: bytes | memoryview = pack_frame(dumps(message, self.shm_prefix))
        if peer.sock.fileno() < 0:
            return  # the peer is gone
        if not peer.wbuf:
            try:
                sent = peer.sock.send(frame, socket.MSG_DONTWAIT)
            except BlockingIOError:
                sent = 0
            except OSError:
                return  # the peer is gone; its EOF is handled by the loop
            if sent == len(frame):
                return
            frame = memoryview(frame)[sent:]
            self._selector.modify(peer.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, peer)
        peer.wbuf.append(frame)

    def _pump(self, peer: _Peer) -> None:
        """Send what the peer's socket takes now of what waits for it."""
        while peer.wbuf:
            try:
                sent = peer.sock.sendmsg(
                    list(itertools.islice(peer.wbuf, 64)), (), socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                return
            except OSError:
                peer.wbuf.clear()  # the peer is gone; its EOF is handled by the loop
                break
            while sent and sent >= len(peer.wbuf[0]):
                sent -= len(peer.wbuf.popleft())
            if sent:
                peer.wbuf[0] = memoryview(peer.wbuf[0])[sent:]
        if peer.sock.fileno() >= 0:
            self._selector.modify(peer.sock, selectors.EVENT_READ, peer)

    def _reply(self, peer: _Peer, req_id: int, payload: Any, ok: bool = True) -> None:
        self._send(peer, (int(Msg.HEAD_REPLY), req_id, ok, payload))

    def _send_worker(self, worker: _Worker, message: tuple[Any, ...]) -> None:
        if worker.peer is None:
            worker.backlog.append(message)
        else:
            self._send(worker.peer, message)

    # -- workers -------------------------------------------------------------------

    def _spawn_worker(self, env_overrides: dict[str, str] | None = None) -> _Worker:
        worker_id = f"w{next(self._worker_ids)}"
        env = dict(os.environ)
        path = [p or os.getcwd() for p in sys.path]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
        # A CPU-only worker must not take a GPU by accident; GPU placement
        # overrides this with the UUIDs it assigns.
        env["CUDA_VISIBLE_DEVICES"] = ""
        if env_overrides:
            env.update(env_overrides)
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rigd.actors._worker",
                self.session_dir,
                worker_id,
                str(os.getpid()),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            close_fds=True,
        )
        worker = _Worker(worker_id, popen)
        self._workers[worker_id] = worker
        # A pidfd turns readable when the process ends: deaths are seen even
        # before the worker connects (killed while starting, or an import
        # error), not only through its socket's EOF.
        try:
            worker.pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):
            worker.pidfd = None
        else:
            self._selector.register(
                worker.pidfd, selectors.EVENT_READ, lambda _f, w=worker: self._on_pidfd(w)
            )
        return worker

    def _take_worker(self) -> _Worker:
        """A worker for a new job: a spare (connected ones first), else a new one."""
        self._spares.sort(key=lambda w: w.peer is None)
        worker = self._spares.pop(0) if self._spares else self._spawn_worker()
        self._refill_spares()
        return worker

    def _worker_for(self, actor: _Actor) -> _Worker:
        """A worker for ``actor``: a spare, or for a GPU actor a new process
        whose CUDA_VISIBLE_DEVICES names its GPUs (set before CUDA loads)."""
        if not actor.gpus:
            return self._take_worker()
        return self._spawn_worker(_gpu_environment(actor.gpus))

    def _refill_spares(self) -> None:
        # One spare starting at a time: a burst of creations must not
        # compete with spares for the CPUs.
        if self._stopping or len(self._spares) >= SPARE_WORKERS:
            return
        if any(w.peer is None for w in self._spares):
            return
        self._spares.append(self._spawn_worker())

    def _on_pidfd(self, worker: _Worker) -> None:
        peer = worker.peer
        if peer is not None:
            # Read what it sent before dying (EXITING, ACTOR_FAILED) first.
            while data := recv_nowait(peer.sock):
                for frame in peer.reader.feed(data):
                    message = loads(frame)
                    self._handlers[message[0]](peer, message)
            self._on_peer_lost(peer)
        else:
            self._on_worker_exit(worker)

    def _on_hello(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, worker_id, pid = message
        peer.pid = pid
        self._peers_by_pid[pid] = peer
        if worker_id is None:
            return
        worker = self._workers.get(worker_id)
        if worker is None:
            peer.sock.close()
            return
        worker.peer = peer
        peer.worker = worker
        for queued in worker.backlog:
            self._send(peer, queued)
        worker.backlog.clear()
        if worker in self._spares:
            self._refill_spares()
            return
        if worker in self._task_workers and worker.task is None:
            self._idle_task_workers.append(worker)
            self._dispatch_tasks()

    def _on_peer_lost(self, peer: _Peer) -> None:
        if peer.sock.fileno() < 0:
            return  # already handled (EOF and pidfd both report one death)
        self._selector.unregister(peer.sock)
        peer.sock.close()
        if self._peers_by_pid.get(peer.pid) is peer:
            del self._peers_by_pid[peer.pid]
        for token, (borrower, req_id, owner) in list(self._ref_requests.items()):
            if owner is peer:
                del self._ref_requests[token]
                self._reply(
                    borrower,
                    req_id,
                    OwnerDiedError(
                        f"the process (pid {peer.pid}) that owns a ref passed to this one died "
                        "before the ref's value was ready"
                    ),
                    ok=False,
                )
            elif borrower is peer:
                del self._ref_requests[token]
        worker = peer.worker
        if worker is not None:
            self._on_worker_exit(worker)
        for actor in list(self._actors.values()):
            if peer in actor.holders:
                actor.holders.discard(peer)
                self._maybe_collect(actor)
            if actor.creator is peer and not actor.options.detached:
                self._terminate(actor, ExitKind.CREATOR_DIED)

    def _on_worker_exit(self, worker: _Worker) -> None:
        if self._workers.get(worker.worker_id) is not worker:
            return  # already handled
        if worker.pidfd is not None:
            self._selector.unregister(worker.pidfd)
            os.close(worker.pidfd)
            worker.pidfd = None
        try:
            code = worker.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            worker.popen.kill()
            code = worker.popen.wait()
        self._workers.pop(worker.worker_id, None)
        if worker in self._spares:
            self._spares.remove(worker)
            self._refill_spares()
        if worker.exit_kind is None:
            worker.exit_kind = ExitKind.CRASHED
            if code < 0:
                worker.exit_detail = (
                    f"its process (pid {worker.popen.pid}) was killed by signal "
                    f"{signal.Signals(-code).name}"
                )
            else:
                worker.exit_detail = f"its process (pid {worker.popen.pid}) exited with code {code}"
        if worker.actor is not None:
            actor = worker.actor
            reason = _reason(actor, worker.exit_kind, worker.exit_detail)
            if self._may_restart(actor, worker):
                self._restart(actor, worker, reason)
            else:
                self._actor_dead(actor, reason)
        if worker in self._task_workers:
            self._task_workers.remove(worker)
            if worker in self._idle_task_workers:
                self._idle_task_workers.remove(worker)
            task = worker.task
            if task is not None:
                worker.task = None
                if not worker.blocked:
                    self._cpus_free += task.num_cpus
                self._release_task_gpus(task)
                if task.retries_left != 0 and not self._stopping:
                    task.retries_left -= 1
                    self._tasks.appendleft(task)
                else:
                    self._reply(
                        task.submitter,
                        task.req_id,
                        WorkerCrashedError(
                            f"the worker running task {task.name} died: {worker.exit_detail}"
                        ),
                        ok=False,
                    )
            self._dispatch_tasks()

    # -- actors ----------------------------------------------------------------------

    def _on_create_actor(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        (_, req_id, actor_id, class_name, methods, cls_body, args_body, options, namespace) = (
            message
        )
        options = options if isinstance(options, ActorOptions) else ActorOptions()
        ns = options.namespace or namespace
        if options.name is not None:
            existing = self._names.get((ns, options.name))
            if existing is not None:
                if options.get_if_exists:
                    self._reply(peer, req_id, self._handle_info(existing))
                    return
                self._reply(
                    peer,
                    req_id,
                    ValueError(
                        f"the name {options.name!r} is already taken in namespace {ns!r} by "
                        f"actor {existing.class_name} ({existing.actor_id}); pass "
                        f"get_if_exists=True to reuse it, or choose another name"
                    ),
                    ok=False,
                )
                return
        cpus = float(options.num_cpus or 0)
        if self._refuse_impossible(peer, req_id, f"actor {class_name}", cpus, options.num_gpus):
            return
        start = (int(Msg.START_ACTOR), actor_id, class_name, cls_body, args_body, ns, methods)
        actor = _Actor(actor_id, class_name, methods, options, ns, start, peer, cpus=cpus)
        self._actors[actor_id] = actor
        if options.name is not None:
            self._names[(ns, options.name)] = actor
        self._reply(peer, req_id, self._handle_info(actor))
        self._pending_actors.append(actor)
        self._start_pending_actors()

    def _refuse_impossible(
        self, peer: _Peer, req_id: int, who: str, num_cpus: float, num_gpus: float
    ) -> bool:
        """Refuse (and answer) a request no amount of waiting could meet."""
        problem = None
        if num_cpus > self.total_cpus:
            problem = (
                f"{who} asks for num_cpus={num_cpus:g} but this runtime has "
                f"{self.total_cpus:g} CPUs; ask for fewer, or pass rigd.init(num_cpus=...)"
            )
        elif (gpus := self._gpus.impossible(float(num_gpus))) is not None:
            problem = f"{who} asks for {gpus}"
        if problem is None:
            return False
        self._reply(peer, req_id, ResourceUnavailableError(problem), ok=False)
        return True

    def _handle_info(self, actor: _Actor) -> tuple[Any, ...]:
        token = secrets.token_hex(8)
        actor.tokens[token] = actor.tokens.get(token, 0) + 1
        return (actor.actor_id, actor.class_name, actor.methods, token)

    def _start_pending_actors(self) -> None:
        while self._pending_actors and not self._stopping:
            actor = self._pending_actors[0]
            if actor.state is not ActorState.PENDING:
                self._pending_actors.popleft()
                continue
            if actor.cpus > self._cpus_free:
                return  # waits, as in Ray, until an actor or task frees CPUs
            if actor.options.num_gpus:
                gpus = self._gpus.allocate(float(actor.options.num_gpus))
                if gpus is None:
                    return  # waits until an actor frees a GPU
                actor.gpus = gpus
            self._pending_actors.popleft()
            self._cpus_free -= actor.cpus
            worker = self._worker_for(actor)
            worker.actor = actor
            actor.worker = worker
            actor.state = ActorState.STARTING
            self._send_worker(worker, _start_message(actor))

    def _on_actor_ready(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, actor_id, path = message
        actor = self._actors.get(actor_id)
        if actor is None or actor.state is not ActorState.STARTING:
            return
        actor.state = ActorState.ALIVE
        actor.address = path
        for waiter, req_id in actor.address_waiters:
            self._reply(waiter, req_id, (path, actor.options.max_task_retries, actor.restarts))
        actor.address_waiters.clear()
        if actor.terminating:
            actor.terminating = False
            self._maybe_collect(actor)

    def _on_actor_failed(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, _actor_id, error_text = message
        worker = peer.worker
        if worker is not None:
            worker.exit_kind = ExitKind.CONSTRUCTOR_FAILED
            worker.exit_detail = error_text

    def _on_exiting(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, kind, detail = message
        worker = peer.worker
        if worker is not None and worker.exit_kind is None:
            worker.exit_kind = ExitKind(kind)
            worker.exit_detail = detail
        if worker is not None and worker.actor is not None:
            self._ending(worker.actor)  # sent before its shutdown hook runs

    def _may_restart(self, actor: _Actor, worker: _Worker, kind: ExitKind | None = None) -> bool:
        """Whether the actor restarts after its worker ends (``kind``: how it will end)."""
        limit = actor.options.max_restarts
        kind = kind or worker.exit_kind
        unexpected = kind is ExitKind.CRASHED or (kind is ExitKind.KILLED and worker.allow_restart)
        return (
            unexpected
            and not self._stopping
            and actor.state in (ActorState.STARTING, ActorState.ALIVE)
            and (limit == -1 or actor.restarts < limit)
        )

    def _restart(self, actor: _Actor, old: _Worker, reason: str) -> None:
        """Start the actor again in a new process, with its constructor's original arguments."""
        actor.restarts += 1
        limit = actor.options.max_restarts
        self._task_log.add(
            [
                (
                    f"{actor.actor_id}-restart-{actor.restarts}",
                    TaskState.ACTOR_RESTARTED,
                    time.time(),
                    f"{actor.class_name} restart",
                    actor.actor_id,
                    reason,
                )
            ]
        )
        log.warning(
            "%s; restarting it (restart %d of %s)",
            reason,
            actor.restarts,
            "unlimited" if limit == -1 else limit,
        )
        if old.peer is not None:
            self._end_children_of(old.peer)
        for waiter, req_id in actor.death_waiters:
            self._reply(waiter, req_id, (True, reason))
        actor.death_waiters.clear()
        actor.state = ActorState.STARTING
        actor.address = None
        worker = self._worker_for(actor)  # on the same GPUs, if it has any
        worker.actor = actor
        actor.worker = worker
        self._send_worker(worker, _start_message(actor))

    def _end_children_of(self, creator: _Peer) -> None:
        for child in list(self._actors.values()):
            if child.creator is creator and not child.options.detached:
                self._terminate(child, ExitKind.CREATOR_DIED)

    def _actor_dead(self, actor: _Actor, reason: str) -> None:
        if actor.state is ActorState.DEAD:
            return
        was_running = actor.state in (ActorState.STARTING, ActorState.ALIVE)
        actor.state = ActorState.DEAD
        actor.death_reason = reason
        self._dead_actors.append(actor.actor_id)
        while len(self._dead_actors) > MAX_DEAD_ACTORS:
            forgotten = self._actors.get(self._dead_actors.popleft())
            if forgotten is not None and forgotten.state is ActorState.DEAD:
                del self._actors[forgotten.actor_id]
        for incarnation in range(actor.restarts + 1):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(table_path(self.session_dir, actor.actor_id, incarnation))
        if was_running:
            self._cpus_free += actor.cpus
        if actor.gpus:
            self._gpus.release(actor.gpus, float(actor.options.num_gpus))
            actor.gpus = ()
        self._ending(actor)
        error = ActorDiedError(reason)
        for waiter, req_id in actor.address_waiters:
            self._reply(waiter, req_id, error, ok=False)
        actor.address_waiters.clear()
        for waiter, req_id in actor.death_waiters:
            self._reply(waiter, req_id, (False, reason))
        actor.death_waiters.clear()
        # Actors this one created die with it (their creator is its process).
        if actor.worker is not None and actor.worker.peer is not None:
            self._end_children_of(actor.worker.peer)
        self._start_pending_actors()
        self._dispatch_tasks()

    def _on_get_actor(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, req_id, name, namespace = message
        actor = self._names.get((namespace, name))
        if actor is None:
            self._reply(
                peer,
                req_id,
                ValueError(
                    f"no actor named {name!r} in namespace {namespace!r}; create it with "
                    f".options(name={name!r}).remote(), or look in another namespace"
                ),
                ok=False,
            )
            return
        self._reply(peer, req_id, self._handle_info(actor))

    def _on_actor_address(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, req_id, actor_id = message
        actor = self._actors.get(actor_id)
        if actor is None:
            self._reply(
                peer,
                req_id,
                ActorDiedError(
                    f"no actor {actor_id} in this session; was it created before rigd.shutdown()?"
                ),
                ok=False,
            )
        elif actor.state is ActorState.ALIVE:
            self._reply(
                peer, req_id, (actor.address, actor.options.max_task_retries, actor.restarts)
            )
        elif actor.state is ActorState.DEAD:
            self._reply(peer, req_id, ActorDiedError(actor.death_reason), ok=False)
        else:
            actor.address_waiters.append((peer, req_id))

    def _on_death_reason(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        # ``incarnation`` is the restart count the caller was connected to: a
        # later one means the actor restarted (and may be alive again already).
        _, req_id, actor_id, incarnation = message
        actor = self._actors.get(actor_id)
        if actor is None:
            self._reply(peer, req_id, (False, f"no actor {actor_id} in this session"))
        elif actor.state is ActorState.DEAD:
            self._reply(peer, req_id, (False, actor.death_reason))
        elif actor.restarts > incarnation:
            self._reply(peer, req_id, (True, f"the actor {actor.class_name} restarted"))
        else:
            actor.death_waiters.append((peer, req_id))

    def _on_list_actors(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, req_id = message
        self._reply(
            peer,
            req_id,
            [
                {
                    "actor_id": a.actor_id,
                    "class_name": a.class_name,
                    "name": a.options.name,
                    "namespace": a.namespace,
                    "state": a.state.value,
                    "pid": a.worker.popen.pid if a.worker is not None else None,
                    "detached": a.options.detached,
                    "death_reason": a.death_reason,
                    "restarts": a.restarts,
                    "num_gpus": float(a.options.num_gpus),
                    "gpu_ids": tuple(g.index for g in a.gpus),
                    "waiting_for": self._waiting_for(a),
                }
                for a in self._actors.values()
            ],
        )

    def _waiting_for(self, actor: _Actor) -> str | None:
        """Why a pending actor has not started, in words (None if it has)."""
        if actor.state is not ActorState.PENDING:
            return None
        if actor.cpus > self._cpus_free:
            return f"num_cpus={actor.cpus:g}: {self._cpus_free:g} CPUs free"
        if actor.options.num_gpus:
            free = ", ".join(f"GPU {i}: {f:g}" for i, f in self._gpus.free.items())
            return f"num_gpus={actor.options.num_gpus:g}: free now {free or 'none'}"
        return "its turn: actors ahead of it are waiting"

    def _on_kill(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, req_id, actor_id, no_restart = message
        actor = self._actors.get(actor_id)
        if actor is not None:
            if actor.worker is not None:
                actor.worker.allow_restart = not no_restart
            if actor.worker is None or not self._may_restart(actor, actor.worker, ExitKind.KILLED):
                # Ending for good: the name is free before kill() returns.
                self._ending(actor)
            self._kill(actor, ExitKind.KILLED, "it was killed with rigd.kill()")
        self._reply(peer, req_id, None)

    def _ending(self, actor: _Actor) -> None:
        """The actor is ending for good: free its name now, not once its process is reaped.

        ``get_actor`` and ``get_if_exists`` then never hand out an actor that
        is ending, and the name can be taken again at once.
        """
        if actor.options.name is not None:
            key = (actor.namespace, actor.options.name)
            if self._names.get(key) is actor:
                del self._names[key]

    def _kill(self, actor: _Actor, kind: ExitKind, detail: str) -> None:
        if actor.state is ActorState.PENDING:
            self._actor_dead(actor, _reason(actor, kind, detail))
            return
        worker = actor.worker
        if worker is None or actor.state is ActorState.DEAD:
            return
        if worker.exit_kind is None or worker.exit_kind is not ExitKind.CONSTRUCTOR_FAILED:
            worker.exit_kind = kind
            worker.exit_detail = detail
        try:
            worker.popen.kill()
        except ProcessLookupError:
            pass

    def _terminate(self, actor: _Actor, kind: ExitKind) -> None:
        """End an actor promptly: its hook runs, then it exits; killed if it hangs."""
        if actor.state is ActorState.DEAD:
            return
        if actor.state is ActorState.PENDING:
            self._actor_dead(actor, _reason(actor, kind, ""))
            return
        self._ending(actor)
        worker = actor.worker
        assert worker is not None
        if worker.exit_kind is None:
            worker.exit_kind = kind
            worker.exit_detail = ""
        self._send_worker(worker, (int(Msg.TERMINATE), TerminateMode.PROMPT.value, kind.value))
        self._after(PROMPT_KILL_AFTER_S, lambda: self._kill(actor, kind, "it did not end in time"))

    # -- handle accounting -------------------------------------------------------------

    def _on_acquire(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, actor_id, token = message
        actor = self._actors.get(actor_id)
        if actor is None:
            return
        actor.holders.add(peer)
        left = actor.tokens.get(token, 0) - 1
        if left:
            actor.tokens[token] = left
        else:
            actor.tokens.pop(token, None)

    def _on_lend(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, actor_id, token = message
        actor = self._actors.get(actor_id)
        if actor is None:
            return
        left = actor.tokens.get(token, 0) + 1
        if left:
            actor.tokens[token] = left
        else:
            actor.tokens.pop(token, None)

    def _on_release(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, actor_id = message
        actor = self._actors.get(actor_id)
        if actor is None:
            return
        actor.holders.discard(peer)
        self._maybe_collect(actor)

    def _maybe_collect(self, actor: _Actor) -> None:
        if actor.options.detached or actor.state is ActorState.DEAD or actor.terminating:
            return
        if actor.holders or any(count > 0 for count in actor.tokens.values()):
            return
        actor.terminating = True
        self._ending(actor)
        if actor.state is ActorState.PENDING:
            self._actor_dead(actor, _reason(actor, ExitKind.GRACEFUL, ""))
        elif actor.state is ActorState.ALIVE:
            assert actor.worker is not None
            actor.worker.exit_kind = ExitKind.GRACEFUL
            self._send_worker(
                actor.worker, (int(Msg.TERMINATE), TerminateMode.DRAIN.value, "graceful")
            )
        # STARTING: collected once ready (see _on_actor_ready).

    # -- tasks -------------------------------------------------------------------------

    def _on_submit_task(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        (
            _,
            req_id,
            fn_id,
            fn_body,
            name,
            body,
            num_cpus,
            max_retries,
            task_id,
            num_gpus,
            streaming,
            namespace,
            retry_exceptions,
        ) = message
        if self._refuse_impossible(peer, req_id, f"task {name}", num_cpus, num_gpus):
            return
        self._tasks.append(
            _Task(
                next(self._task_ids),
                peer,
                req_id,
                fn_id,
                fn_body,
                name,
                body,
                float(num_cpus),
                max_retries,
                task_id,
                float(num_gpus),
                streaming=streaming,
                namespace=namespace,
                retry_exceptions=retry_exceptions,
            )
        )
        self._dispatch_tasks()

    # -- borrowed refs ------------------------------------------------------------------

    def _on_ref_get(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, req_id, ref_id = message
        try:
            owner = self._peers_by_pid.get(int(ref_id.split("-", 1)[0], 16))
        except ValueError:
            owner = None
        if owner is None:
            self._reply(
                peer,
                req_id,
                OwnerDiedError(f"the process that owns ObjectRef({ref_id}) is gone"),
                ok=False,
            )
            return
        token = next(self._ref_tokens)
        self._ref_requests[token] = (peer, req_id, owner)
        self._send(owner, (int(Msg.REF_WANTED), token, ref_id))

    def _on_ref_cancel(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        # rigd.cancel on a borrowed ref: its owner cancels the call (Ray's rule:
        # cancelling goes to the owner). An owner that is gone has nothing to cancel.
        _, ref_id, force = message
        try:
            owner = self._peers_by_pid.get(int(ref_id.split("-", 1)[0], 16))
        except ValueError:
            owner = None
        if owner is not None:
            self._send(owner, (int(Msg.REF_CANCEL_WANTED), ref_id, force))

    def _on_ref_value(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, token, ok, body = message
        request = self._ref_requests.pop(token, None)
        if request is not None:
            self._reply(request[0], request[1], (ok, body))

    def _on_task_events(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        self._task_log.add(message[1])

    def _on_list_tasks(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        self._reply(peer, message[1], self._task_log.rows())

    def _on_cancel_task(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        # A queued task is dropped. A running one is interrupted (the worker
        # raises KeyboardInterrupt in it, as Ray does), or with force its
        # worker is killed and replaced, its GPU process too.
        _, req_id, force = message
        for worker in list(self._task_workers):
            task = worker.task
            if task is None or task.submitter is not peer or task.req_id != req_id:
                continue
            if not force:
                self._send_worker(worker, (int(Msg.CANCEL_TASK), task.task_id))
                return
            worker.task = None
            if not worker.blocked:
                self._cpus_free += task.num_cpus
            worker.blocked = False
            self._release_task_gpus(task)
            self._task_workers.remove(worker)
            if worker in self._idle_task_workers:
                self._idle_task_workers.remove(worker)
            worker.exit_kind = ExitKind.KILLED
            worker.exit_detail = f"its task {task.name} was cancelled with force=True"
            worker.popen.kill()
            self._reply(
                peer,
                req_id,
                TaskCancelledError(
                    f"the task {task.name} was cancelled with rigd.cancel(force=True); "
                    "its worker was killed"
                ),
                ok=False,
            )
            self._dispatch_tasks()
            return
        for task in self._tasks:
            if task.submitter is peer and task.req_id == req_id:
                self._tasks.remove(task)
                self._reply(
                    peer,
                    req_id,
                    TaskCancelledError(f"the task {task.name} was cancelled with rigd.cancel"),
                    ok=False,
                )
                return

    def _dispatch_tasks(self) -> None:
        self._dispatch_gpu_tasks()
        while not self._stopping:
            task = next((t for t in self._tasks if t.num_gpus == 0), None)
            if task is None or task.num_cpus > self._cpus_free:
                return
            if not self._idle_task_workers:
                pool = [w for w in self._task_workers if not w.gpu_task]
                starting = sum(1 for w in pool if w.peer is None)
                busy = sum(1 for w in pool if w.task is not None and not w.blocked)
                if starting == 0 and busy < max(1, int(self.total_cpus)):
                    worker = self._take_worker()
                    self._task_workers.append(worker)
                    if worker.peer is not None:
                        self._idle_task_workers.append(worker)
                        continue
                return
            worker = self._idle_task_workers.pop()
            self._tasks.remove(task)
            self._cpus_free -= task.num_cpus
            worker.task = task
            self._run_task(worker, task)

    def _run_task(self, worker: _Worker, task: _Task) -> None:
        if task.event_id is not None:
            self._task_log.add([(task.event_id, TaskState.RUNNING, time.time(), None, None, None)])
        self._send_worker(
            worker,
            (
                int(Msg.RUN_TASK),
                task.task_id,
                task.fn_id,
                task.fn_body,
                task.name,
                task.body,
                task.streaming,
                task.namespace,
                task.retry_exceptions,
                task.retries_left,
                task.items_sent,
            ),
        )

    def _dispatch_gpu_tasks(self) -> None:
        """Start each queued GPU task whose CPUs and GPUs are free, in a new process.

        A GPU task runs in a worker of its own, started with its GPUs in
        ``CUDA_VISIBLE_DEVICES`` (CUDA reads it once, at load) and retired
        after the task; a GPU task that must wait does not hold back the CPU
        tasks queued behind it.
        """
        for task in [t for t in self._tasks if t.num_gpus > 0]:
            if self._stopping or task.num_cpus > self._cpus_free:
                return
            gpus = self._gpus.allocate(task.num_gpus)
            if gpus is None:
                return  # waits, as in Ray, until an actor or task frees a GPU
            self._tasks.remove(task)
            task.gpus = gpus
            self._cpus_free -= task.num_cpus
            worker = self._spawn_worker(_gpu_environment(gpus))
            worker.task = task
            worker.gpu_task = True
            self._task_workers.append(worker)
            self._run_task(worker, task)

    def _release_task_gpus(self, task: _Task) -> None:
        if task.gpus:
            self._gpus.release(task.gpus, task.num_gpus)
            task.gpus = ()
            self._start_pending_actors()

    def _on_task_done(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        _, task_id, reply_body = message
        worker = peer.worker
        if worker is None or worker.task is None or worker.task.task_id != task_id:
            return
        task = worker.task
        worker.task = None
        if not worker.blocked:
            self._cpus_free += task.num_cpus
        worker.blocked = False
        self._reply(task.submitter, task.req_id, reply_body)
        if worker.gpu_task:
            # Its CUDA context holds the GPU: the process ends with its task.
            self._task_workers.remove(worker)
            worker.exit_kind = ExitKind.SHUTDOWN
            self._send_worker(
                worker, (int(Msg.TERMINATE), TerminateMode.PROMPT.value, ExitKind.SHUTDOWN.value)
            )
            self._release_task_gpus(task)
        else:
            self._idle_task_workers.append(worker)
        self._dispatch_tasks()
        self._start_pending_actors()

    def _on_task_item(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        # An item of a generator task: on to the submitter, on the same
        # ordered connection as the task's final reply.
        _, task_id, body = message
        worker = peer.worker
        if worker is not None and worker.task is not None and worker.task.task_id == task_id:
            worker.task.items_sent += 1
            self._send(worker.task.submitter, (int(Msg.HEAD_ITEM), worker.task.req_id, body))

    def _on_blocked(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        # A task waiting in rigd.get gives its CPU back, so the tasks it waits
        # for can run (else two nested tasks on two CPUs would deadlock).
        worker = peer.worker
        if worker is not None and worker.task is not None and not worker.blocked:
            worker.blocked = True
            self._cpus_free += worker.task.num_cpus
            self._dispatch_tasks()

    def _on_unblocked(self, peer: _Peer, message: tuple[Any, ...]) -> None:
        worker = peer.worker
        if worker is not None and worker.task is not None and worker.blocked:
            worker.blocked = False
            self._cpus_free -= worker.task.num_cpus

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
        for actor in self._actors.values():
            if actor.state in (ActorState.STARTING, ActorState.ALIVE) and actor.worker:
                if actor.worker.exit_kind is None:
                    actor.worker.exit_kind = ExitKind.SHUTDOWN
                self._send_worker(
                    actor.worker,
                    (int(Msg.TERMINATE), TerminateMode.PROMPT.value, ExitKind.SHUTDOWN.value),
                )
        for worker in [*self._task_workers, *self._spares]:
            self._send_worker(
                worker, (int(Msg.TERMINATE), TerminateMode.PROMPT.value, ExitKind.SHUTDOWN.value)
            )
        # Keep serving while workers end: one still starting must get its
        # backlog (its job, then TERMINATE) to end cleanly.
        deadline = time.monotonic() + SHUTDOWN_GRACE_S
        while time.monotonic() < deadline and any(
            w.popen.poll() is None for w in self._workers.values()
        ):
            for key, mask in self._selector.select(0.01):
                if key.fileobj is self._listener or key.fileobj == self._wake_r:
                    key.data(key.fileobj)
                    continue
                try:
                    self._dispatch(key, mask)
                except Exception:
                    log.exception("rigd head: error during shutdown")
        for worker in list(self._workers.values()):
            if worker.popen.poll() is None:
                log.warning(
                    "worker %s (pid %d) did not end within %.0f s of shutdown; killed",
                    worker.worker_id,
                    worker.popen.pid,
                    SHUTDOWN_GRACE_S,
                )
                worker.popen.kill()
            worker.popen.wait()
        for actor in list(self._actors.values()):
            self._actor_dead(actor, _reason(actor, ExitKind.SHUTDOWN, ""))
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


def _start_message(actor: _Actor) -> tuple[Any, ...]:
    """What a worker needs to start ``actor``: its class, arguments, name, restarts."""
    return (*actor.start_message, actor.options.name, actor.restarts)


def _gpu_environment(gpus: tuple[GpuInfo, ...]) -> dict[str, str]:
    """The environment of a process placed on ``gpus``, set before CUDA loads."""
    return {
        "CUDA_VISIBLE_DEVICES": ",".join(g.uuid for g in gpus),
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        GPU_IDS_ENV: ",".join(str(g.index) for g in gpus),
        # Simulated GPUs (RIGD_FAKE_GPUS): CUDA must not be asked.
        SIMULATED_GPUS_ENV: "1" if any(g.simulated for g in gpus) else "",
    }


def _reason(actor: _Actor, kind: ExitKind | None, detail: str) -> str:
    why = {
        ExitKind.GRACEFUL: "it was terminated gracefully (its handles were released, "
        "or __rigd_terminate__ was called)",
        ExitKind.EXIT_ACTOR: "it exited by calling rigd.actor.exit_actor()",
        ExitKind.KILLED: "it was killed with rigd.kill()",
        ExitKind.CONSTRUCTOR_FAILED: "its constructor raised an exception",
        ExitKind.CREATOR_DIED: "the process that created it died",
        ExitKind.SHUTDOWN: "the rigd runtime was shut down",
        ExitKind.CRASHED: "its process died unexpectedly",
        None: "it died",
    }[kind]
    text = f"The actor {actor.class_name} ({actor.actor_id}) died: {why}"
    if detail and kind is not ExitKind.KILLED:
        text += f": {detail}" if kind is not ExitKind.CONSTRUCTOR_FAILED else f":\n{detail}"
    return text
