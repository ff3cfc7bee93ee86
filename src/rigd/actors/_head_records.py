"""The head's records: a connected process, a worker process, an actor, a task.

Plain slotted records; each is changed only by the head object that owns it
(a ``Peer`` by the head loop, a ``Worker`` by the worker pool and the task
scheduler, an ``ActorRecord`` by the actor table, a ``TaskRecord`` by the
task scheduler).
"""

from __future__ import annotations

import collections
import itertools
import selectors
import socket
import subprocess
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from rigd.actors._from_head import StartActor
from rigd.actors._messages import ExitKind
from rigd.actors._options import ActorOptions
from rigd.actors._wire import FrameReader
from rigd.gpu import GpuInfo

__all__ = ["ActorRecord", "ActorState", "Peer", "TaskRecord", "Worker", "death_reason"]


class ActorState(Enum):
    """Where an actor is in its life, as the head sees it."""

    PENDING = "pending"  # waiting for resources
    STARTING = "starting"  # process spawned, constructor not done
    ALIVE = "alive"
    DEAD = "dead"


@dataclass(eq=False, slots=True)
class Peer:
    """One process connected to the head."""

    sock: socket.socket
    reader: FrameReader = field(default_factory=FrameReader)
    pid: int = 0
    worker: Worker | None = None
    # What the peer's socket did not take yet. The head never blocks sending:
    # one peer that does not read (stopped, or busy) must not wedge the
    # session, and a peer blocked sending to the head must still be read.
    wbuf: collections.deque[bytes | memoryview] = field(default_factory=collections.deque)

    def send(self, frame: bytes, selector: selectors.BaseSelector) -> None:
        """Send ``frame`` without blocking; queue what the socket does not take.

        ``selector`` (the head's) then watches the socket for room.
        """
        if self.sock.fileno() < 0:
            return  # the peer is gone
        rest: bytes | memoryview = frame
        if not self.wbuf:
            try:
                sent = self.sock.send(frame, socket.MSG_DONTWAIT)
            except BlockingIOError:
                sent = 0
            except OSError:
                return  # the peer is gone; its EOF is handled by the loop
            if sent == len(frame):
                return
            rest = memoryview(frame)[sent:]
            selector.modify(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)
        self.wbuf.append(rest)

    def pump(self, selector: selectors.BaseSelector) -> None:
        """Send what the socket takes now of what waits for it."""
        while self.wbuf:
            try:
                sent = self.sock.sendmsg(
                    list(itertools.islice(self.wbuf, 64)), (), socket.MSG_DONTWAIT
                )
            except BlockingIOError:
                return
            except OSError:
                self.wbuf.clear()  # the peer is gone; its EOF is handled by the loop
                break
            while sent and sent >= len(self.wbuf[0]):
                sent -= len(self.wbuf.popleft())
            if sent:
                self.wbuf[0] = memoryview(self.wbuf[0])[sent:]
        if self.sock.fileno() >= 0:
            selector.modify(self.sock, selectors.EVENT_READ, self)


@dataclass(eq=False, slots=True)
class Worker:
    """One worker process: a spare, an actor's, or a task worker."""

    worker_id: str
    popen: subprocess.Popen[bytes]
    peer: Peer | None = None
    backlog: list[tuple[Any, ...]] = field(default_factory=list)
    actor: ActorRecord | None = None
    task: TaskRecord | None = None
    blocked: bool = False
    exit_kind: ExitKind | None = None
    exit_detail: str = ""
    pidfd: int | None = None
    allow_restart: bool = False
    #: Runs one GPU task, then ends (its CUDA context holds the GPU).
    gpu_task: bool = False


@dataclass(eq=False, slots=True)
class ActorRecord:
    """One actor, from its creation until the head forgets it."""

    actor_id: str
    class_name: str
    methods: Any
    options: ActorOptions
    namespace: str
    cls_body: bytes
    args_body: bytes
    creator: Peer | None
    state: ActorState = ActorState.PENDING
    address: str | None = None
    worker: Worker | None = None
    address_waiters: list[tuple[Peer, int]] = field(default_factory=list)
    death_waiters: list[tuple[Peer, int]] = field(default_factory=list)
    death_reason: str | None = None
    terminating: bool = False
    cpus: float = 0.0
    restarts: int = 0
    gpus: tuple[GpuInfo, ...] = ()

    def address_info(self) -> tuple[str | None, int, int]:
        """What a caller connects with: the socket path, ``max_task_retries``, restarts."""
        return (self.address, self.options.max_task_retries, self.restarts)

    def row(self, waiting_for: str | None) -> dict[str, Any]:
        """The actor as ``list_actors`` shows it (``waiting_for``: why it is pending)."""
        return {
            "actor_id": self.actor_id,
            "class_name": self.class_name,
            "name": self.options.name,
            "namespace": self.namespace,
            "state": self.state.value,
            "pid": self.worker.popen.pid if self.worker is not None else None,
            "detached": self.options.detached,
            "death_reason": self.death_reason,
            "restarts": self.restarts,
            "num_gpus": float(self.options.num_gpus),
            "gpu_ids": tuple(g.index for g in self.gpus),
            "waiting_for": waiting_for,
        }

    def start_order(self) -> StartActor:
        """What a worker needs to start this actor: class, arguments, name, restarts."""
        return StartActor(
            self.actor_id,
            self.class_name,
            self.cls_body,
            self.args_body,
            self.namespace,
            self.methods,
            self.options.name,
            self.restarts,
        )


@dataclass(eq=False, slots=True)
class TaskRecord:
    """One queued or running task."""

    task_id: int
    submitter: Peer
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


def death_reason(actor: ActorRecord, kind: ExitKind | None, detail: str) -> str:
    """Why ``actor`` died, in words (``detail``: what its worker reported)."""
    why = {
        ExitKind.GRACEFUL: "it was terminated gracefully (its handles were released, "
        "or __rigd_terminate__ was called)",
        ExitKind.EXIT_ACTOR: "it exited by calling rigd.actor.exit_actor()",
        # Ray's sentence too: ported code matches it (Ray's own tests do).
        ExitKind.KILLED: "it was killed with rigd.kill() (in Ray's words: The actor is dead "
        "because it was killed by `ray.kill`.)",
        ExitKind.CONSTRUCTOR_FAILED: "its constructor raised an exception",
        ExitKind.CREATOR_DIED: "the process that created it died",
        ExitKind.SHUTDOWN: "the rigd runtime was shut down",
        ExitKind.GROUP_REMOVED: "its placement group was removed (in Ray's words: The actor "
        "is dead because its placement group was removed.)",
        ExitKind.CRASHED: "its process died unexpectedly",
        None: "it died",
    }[kind]
    text = f"The actor {actor.class_name} ({actor.actor_id}) died: {why}"
    if detail and kind not in (ExitKind.KILLED, ExitKind.GROUP_REMOVED):
        text += f": {detail}" if kind is not ExitKind.CONSTRUCTOR_FAILED else f":\n{detail}"
    return text
