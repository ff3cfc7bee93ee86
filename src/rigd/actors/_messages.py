"""The kinds of message the runtime's processes exchange.

Messages are tuples whose first item is a ``Msg`` value (sent as a plain
int: pickling an enum member costs a name lookup on every message).

Three conversations, each on its own Unix stream socket:

- caller -> actor (the hot path): ``CALL``, answered by ``REPLY_OK`` or
  ``REPLY_ERR`` on the same socket, in order; ``CLOSE`` says the caller holds
  no more handles to that actor.
- any process -> head: requests with an id (``CREATE_ACTOR``, ``GET_ACTOR``,
  ``ACTOR_ADDRESS``, ``SUBMIT_TASK``, ...), answered by ``HEAD_REPLY``, and
  one-way notices (``ACQUIRE``, ``RELEASE``, ``LEND``).
- head -> worker: ``START_ACTOR``, ``RUN_TASK``, ``TERMINATE``; answered by
  ``ACTOR_READY``, ``ACTOR_FAILED``, ``TASK_DONE``, ``EXITING``.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum
from typing import Any, NamedTuple, get_args

__all__ = ["ExitKind", "Msg", "TerminateMode", "decode_to_head", "encode", "encode_request"]


class Msg(IntEnum):
    """The first item of every message."""

    # caller <-> actor
    CALL = 1
    REPLY_OK = 2
    REPLY_ERR = 3
    CLOSE = 4
    CANCEL = 5
    REPLY_ITEM = 6
    REPLY_END = 7
    # any process -> head (requests carry an id)
    HELLO = 10
    CREATE_ACTOR = 11
    GET_ACTOR = 12
    ACTOR_ADDRESS = 13
    KILL = 14
    SUBMIT_TASK = 15
    DEATH_REASON = 16
    LIST_ACTORS = 17
    CANCEL_TASK = 18
    LIST_TASKS = 19
    REF_GET = 26  # a borrower asks for the value of a pending ref another process owns
    REF_CANCEL = 27  # a borrower cancels a pending ref another process owns (one-way)
    # any process -> head (one-way)
    ACQUIRE = 20
    RELEASE = 21
    LEND = 22
    BLOCKED = 23
    UNBLOCKED = 24
    TASK_EVENTS = 25
    # head -> process
    HEAD_REPLY = 30
    HEAD_ITEM = 31
    REF_WANTED = 32  # head -> the ref's owner: send its value once it has one
    REF_CANCEL_WANTED = 33  # head -> the ref's owner: cancel the call that fills it
    # head -> worker
    START_ACTOR = 40
    RUN_TASK = 41
    TERMINATE = 42
    # worker -> head
    ACTOR_READY = 50
    ACTOR_FAILED = 51
    TASK_DONE = 52
    EXITING = 53
    TASK_ITEM = 54
    REF_VALUE = 55  # owner -> head: the value (or error) a REF_WANTED asked for


class TerminateMode(StrEnum):
    """How the head asks an actor to end."""

    #: Every handle is gone: serve each caller until it closes, then end.
    DRAIN = "drain"
    #: Requested (``__rigd_terminate__``, creator died, shutdown): finish the
    #: call in progress, fail the rest, run ``__rigd_shutdown__``, end.
    PROMPT = "prompt"


class ExitKind(StrEnum):
    """Why an actor's process ended, as the head records it."""

    GRACEFUL = "graceful"
    EXIT_ACTOR = "exit_actor"
    KILLED = "killed"
    CRASHED = "crashed"
    CONSTRUCTOR_FAILED = "constructor_failed"
    CREATOR_DIED = "creator_died"
    SHUTDOWN = "shutdown"


# -- the kinds as plain ints, the one definition every process uses ------------
# (sent as ints: pickling an enum member costs a name lookup per message)

CALL = int(Msg.CALL)
REPLY_OK = int(Msg.REPLY_OK)
REPLY_ERR = int(Msg.REPLY_ERR)
CLOSE = int(Msg.CLOSE)
CANCEL = int(Msg.CANCEL)
REPLY_ITEM = int(Msg.REPLY_ITEM)
REPLY_END = int(Msg.REPLY_END)
HEAD_REPLY = int(Msg.HEAD_REPLY)
HEAD_ITEM = int(Msg.HEAD_ITEM)
REF_WANTED = int(Msg.REF_WANTED)
REF_CANCEL_WANTED = int(Msg.REF_CANCEL_WANTED)
#: The replies that end a call (a generator method's items come before).
FINAL_REPLIES = (REPLY_OK, REPLY_ERR, REPLY_END)


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
