"""The control plane's messages as typed records, and their one encoding.

Each message kind (``_messages.Msg``) between a process and the head, and
from the head to a worker, has a record here: a ``NamedTuple`` whose fields
are the message's, in wire order. ``encode`` / ``encode_request`` turn a
record into the tuple that travels; ``decode_to_head``, ``decode_order`` and
``decode_from_head`` turn a received tuple back into its record. Adding a
message is a record here, a line in ``_KINDS``, and its handler. (Just
over 400 lines: 32 short records and their one table; split by direction,
the table of kinds would be in pieces.)
"""

from __future__ import annotations

from typing import Any, NamedTuple, get_args

from rigd.actors._messages import Msg

__all__ = [
    "Acquire",
    "ActorAddress",
    "ActorFailed",
    "ActorReady",
    "Blocked",
    "CancelRunning",
    "CancelTask",
    "CreateActor",
    "DeathReason",
    "Exiting",
    "GetActor",
    "HeadItem",
    "HeadMessage",
    "HeadReply",
    "Hello",
    "Kill",
    "Lend",
    "ListActors",
    "ListTasks",
    "Notice",
    "RefCancel",
    "RefCancelWanted",
    "RefGet",
    "RefValue",
    "RefWanted",
    "Release",
    "Request",
    "ResourcesNow",
    "RunTask",
    "StartActor",
    "SubmitTask",
    "TaskDone",
    "TaskEvents",
    "TaskItem",
    "Terminate",
    "Unblocked",
    "WorkerOrder",
    "decode_from_head",
    "decode_order",
    "decode_to_head",
    "encode",
    "encode_request",
    "kind_of",
]

# -- control-plane records: one per message kind, fields in wire order ---------
# A request travels as ``(kind, req_id, *fields)``; a notice (one-way) and a
# head -> worker message as ``(kind, *fields)``. ``encode_request``,
# ``encode`` and ``decode`` below are the only code that knows this layout.


class Hello(NamedTuple):
    """Notice: a process introduces itself (``worker_id`` None for a driver)."""

    worker_id: str | None
    pid: int


class CreateActor(NamedTuple):
    """Request: create an actor; answered with its handle info."""

    actor_id: str
    class_name: str
    methods: Any  # the actor's ActorSchema
    cls_body: bytes
    args_body: bytes
    options: Any  # ActorOptions
    namespace: str


class GetActor(NamedTuple):
    """Request: the handle info of a named actor."""

    name: str
    namespace: str


class ActorAddress(NamedTuple):
    """Request: where an actor listens; answered once it is alive."""

    actor_id: str


class Kill(NamedTuple):
    """Request: kill an actor (``rigd.kill``)."""

    actor_id: str
    no_restart: bool


class SubmitTask(NamedTuple):
    """Request: queue a task; answered with its reply body."""

    fn_id: str
    fn_body: bytes
    name: str
    body: bytes
    num_cpus: float
    max_retries: int
    event_id: str | None
    num_gpus: float
    streaming: bool
    namespace: str
    retry_exceptions: Any


class DeathReason(NamedTuple):
    """Request: why an actor's process ended (``incarnation``: the restart seen)."""

    actor_id: str
    incarnation: int


class ListActors(NamedTuple):
    """Request: a row per actor the head knows."""


class ResourcesNow(NamedTuple):
    """Request: the session's resources, ``(total, free)``, as Ray names them."""


class CancelTask(NamedTuple):
    """Notice: cancel a task this process submitted (``task_req_id``: its request's id)."""

    task_req_id: int
    force: bool


class ListTasks(NamedTuple):
    """Request: the task log's rows."""


class RefGet(NamedTuple):
    """Request: the value of a pending ref another process owns."""

    ref_id: str


class RefCancel(NamedTuple):
    """Notice: cancel the call filling a borrowed ref."""

    ref_id: str
    force: bool


class Acquire(NamedTuple):
    """Notice: this process built a handle of ``actor_id`` (from ``token``)."""

    actor_id: str
    token: str | None


class Release(NamedTuple):
    """Notice: this process's last handle of ``actor_id`` is gone."""

    actor_id: str


class Lend(NamedTuple):
    """Notice: this process pickled a handle of ``actor_id`` under ``token``."""

    actor_id: str
    token: str


class Blocked(NamedTuple):
    """Notice: the task running here waits in ``rigd.get``."""


class Unblocked(NamedTuple):
    """Notice: the task running here waits no more."""


class TaskEvents(NamedTuple):
    """Notice: task events for the head's task log."""

    rows: list[Any]


class ActorReady(NamedTuple):
    """Worker -> head: the actor's constructor returned; it listens at ``path``."""

    actor_id: str
    path: str


class ActorFailed(NamedTuple):
    """Worker -> head: the actor's constructor raised (``error_text``: the traceback)."""

    actor_id: str
    error_text: str


class TaskDone(NamedTuple):
    """Worker -> head: a task ended; ``reply_body`` goes to its submitter."""

    task_id: int
    reply_body: bytes


class TaskItem(NamedTuple):
    """Worker -> head: an item of a generator task."""

    task_id: int
    body: bytes


class Exiting(NamedTuple):
    """Worker -> head: the process is ending, and why (an ``ExitKind`` value)."""

    kind: str
    detail: str


class RefValue(NamedTuple):
    """Owner -> head: the value a ``RefWanted`` asked for."""

    token: int
    ok: bool
    body: bytes


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


#: Requests: ``(kind, req_id, *fields)``.
Request = (
    CreateActor
    | GetActor
    | ActorAddress
    | Kill
    | SubmitTask
    | DeathReason
    | ListActors
    | ResourcesNow
    | ListTasks
    | RefGet
)
#: Notices and worker reports: ``(kind, *fields)``.
Notice = (
    Hello
    | CancelTask
    | RefCancel
    | Acquire
    | Release
    | Lend
    | Blocked
    | Unblocked
    | TaskEvents
    | ActorReady
    | ActorFailed
    | TaskDone
    | TaskItem
    | Exiting
    | RefValue
)
#: What the head sends a worker.
WorkerOrder = StartActor | RunTask | Terminate | CancelRunning
#: What the head sends any process.
HeadMessage = HeadReply | HeadItem | RefWanted | RefCancelWanted

_KINDS: dict[type, Msg] = {
    Hello: Msg.HELLO,
    CreateActor: Msg.CREATE_ACTOR,
    GetActor: Msg.GET_ACTOR,
    ActorAddress: Msg.ACTOR_ADDRESS,
    Kill: Msg.KILL,
    SubmitTask: Msg.SUBMIT_TASK,
    DeathReason: Msg.DEATH_REASON,
    ListActors: Msg.LIST_ACTORS,
    ResourcesNow: Msg.RESOURCES,
    CancelTask: Msg.CANCEL_TASK,
    ListTasks: Msg.LIST_TASKS,
    RefGet: Msg.REF_GET,
    RefCancel: Msg.REF_CANCEL,
    Acquire: Msg.ACQUIRE,
    Release: Msg.RELEASE,
    Lend: Msg.LEND,
    Blocked: Msg.BLOCKED,
    Unblocked: Msg.UNBLOCKED,
    TaskEvents: Msg.TASK_EVENTS,
    ActorReady: Msg.ACTOR_READY,
    ActorFailed: Msg.ACTOR_FAILED,
    TaskDone: Msg.TASK_DONE,
    TaskItem: Msg.TASK_ITEM,
    Exiting: Msg.EXITING,
    RefValue: Msg.REF_VALUE,
    StartActor: Msg.START_ACTOR,
    RunTask: Msg.RUN_TASK,
    Terminate: Msg.TERMINATE,
    CancelRunning: Msg.CANCEL_TASK,
    HeadReply: Msg.HEAD_REPLY,
    HeadItem: Msg.HEAD_ITEM,
    RefWanted: Msg.REF_WANTED,
    RefCancelWanted: Msg.REF_CANCEL_WANTED,
}
_KIND: dict[type, int] = {record: int(kind) for record, kind in _KINDS.items()}
_REQUESTS: dict[int, type[Any]] = {_KIND[r]: r for r in get_args(Request)}
_NOTICES: dict[int, type[Any]] = {_KIND[r]: r for r in get_args(Notice)}
_WORKER_ORDERS: dict[int, type[Any]] = {_KIND[r]: r for r in get_args(WorkerOrder)}
_HEAD_MESSAGES: dict[int, type[Any]] = {_KIND[r]: r for r in get_args(HeadMessage)}


def kind_of(record: NamedTuple) -> Msg:
    """The ``Msg`` kind ``record`` travels as."""
    return _KINDS[type(record)]


def encode(record: Notice | WorkerOrder | HeadMessage) -> tuple[Any, ...]:
    """The wire tuple of a notice, a worker order or a head message."""
    return (_KIND[type(record)], *record)


def encode_request(req_id: int, record: Request) -> tuple[Any, ...]:
    """The wire tuple of request ``record`` sent with id ``req_id``."""
    return (_KIND[type(record)], req_id, *record)


def decode_to_head(message: tuple[Any, ...]) -> tuple[int | None, Request | Notice]:
    """A message the head received: ``(req_id, record)``, ``req_id`` None for a notice.

    Raises:
        KeyError: an unknown kind; TypeError: the wrong number of fields.
    """
    kind = message[0]
    request = _REQUESTS.get(kind)
    if request is not None:
        record: Request | Notice = request._make(message[2:])
        return message[1], record
    return None, _NOTICES[kind]._make(message[1:])


def decode_order(message: tuple[Any, ...]) -> WorkerOrder:
    """A head -> worker message as its record (KeyError, TypeError as ``decode_to_head``)."""
    order: WorkerOrder = _WORKER_ORDERS[message[0]]._make(message[1:])
    return order


def decode_from_head(message: tuple[Any, ...]) -> HeadMessage | None:
    """A head -> process message as its record; None for a worker order."""
    record = _HEAD_MESSAGES.get(message[0])
    return None if record is None else record._make(message[1:])
