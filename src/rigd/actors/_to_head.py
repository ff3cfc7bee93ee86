"""The control plane's messages to the head, as typed records: requests and notices.

A process asks the head with a *request* (answered with a ``HeadReply``) and
tells it with a *notice* (one-way); a worker also reports on its actor or
task with notices. Each record is a ``NamedTuple`` whose fields are the
message's, in wire order. Their kinds and their one encoding are
``_protocol``'s; what the head sends back is ``_from_head``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "Acquire",
    "ActorAddress",
    "ActorFailed",
    "ActorReady",
    "Blocked",
    "CancelTask",
    "CreateActor",
    "CreatePlacementGroup",
    "DeathReason",
    "Exiting",
    "GetActor",
    "Hello",
    "Kill",
    "Lend",
    "ListActors",
    "ListTasks",
    "Notice",
    "PlacementGroupReady",
    "PlacementGroupTable",
    "RefCancel",
    "RefGet",
    "RefValue",
    "Release",
    "RemovePlacementGroup",
    "Request",
    "ResourcesNow",
    "SubmitTask",
    "TaskDone",
    "TaskEvents",
    "TaskItem",
    "Unblocked",
]

# A request travels as ``(kind, req_id, *fields)``, a notice as
# ``(kind, *fields)``; ``_protocol`` is the only code that knows this layout.


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


class CreatePlacementGroup(NamedTuple):
    """Request: add a placement group (``_placement_groups``); reserved when it fits."""

    group: Any  # PlacementGroup
    name: str
    namespace: str
    strategy: str
    detached: bool


class PlacementGroupReady(NamedTuple):
    """Request: answered with the group once its bundles are reserved."""

    group_id: bytes


class RemovePlacementGroup(NamedTuple):
    """Request: remove a placement group (its actors are killed)."""

    group_id: bytes


class PlacementGroupTable(NamedTuple):
    """Request: the placement groups' rows (one named group when ``name`` is set)."""

    name: str
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
    | CreatePlacementGroup
    | PlacementGroupReady
    | RemovePlacementGroup
    | PlacementGroupTable
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
