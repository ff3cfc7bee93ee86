"""The control plane's messages from the head, as typed records.

Orders to a worker (start an actor, run a task, end, cancel) and messages
to any process (the reply to a request, an item of a generator task, a
borrowed ref wanted or cancelled). Each record is a ``NamedTuple`` whose
fields are the message's, in wire order (``(kind, *fields)``); their kinds
and their one encoding are ``_protocol``'s. What processes send the head is
``_to_head``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "CancelRunning",
    "HeadItem",
    "HeadMessage",
    "HeadReply",
    "RefCancelWanted",
    "RefWanted",
    "RunTask",
    "StartActor",
    "Terminate",
    "WorkerOrder",
]


class StartActor(NamedTuple):
    """Head -> worker: construct an actor and serve it."""

    actor_id: str
    class_name: str
    cls_body: bytes
    args_body: bytes
    namespace: str
    methods: Any  # ActorSchema
    name: str | None
    restarts: int


class RunTask(NamedTuple):
    """Head -> worker: run a task (``items_sent``: a generator's items delivered)."""

    task_id: int
    fn_id: str
    fn_body: bytes
    name: str
    body: bytes
    streaming: bool
    namespace: str
    retry_exceptions: Any
    retries_left: int
    items_sent: int


class Terminate(NamedTuple):
    """Head -> worker: end (``mode``: a ``TerminateMode`` value; ``kind``: an ``ExitKind``)."""

    mode: str
    kind: str


class CancelRunning(NamedTuple):
    """Head -> worker: interrupt the task ``task_id``."""

    task_id: int


class HeadReply(NamedTuple):
    """Head -> process: the answer to request ``req_id``."""

    req_id: int
    ok: bool
    payload: Any


class HeadItem(NamedTuple):
    """Head -> process: an item of the generator task of request ``req_id``."""

    req_id: int
    body: bytes


class RefWanted(NamedTuple):
    """Head -> owner: send the value of ``ref_id`` once it has one."""

    token: int
    ref_id: str


class RefCancelWanted(NamedTuple):
    """Head -> owner: cancel the call that fills ``ref_id``."""

    ref_id: str
    force: bool


#: What the head sends a worker.
WorkerOrder = StartActor | RunTask | Terminate | CancelRunning
#: What the head sends any process.
HeadMessage = HeadReply | HeadItem | RefWanted | RefCancelWanted
