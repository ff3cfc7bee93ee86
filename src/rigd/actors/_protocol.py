"""The control plane's kinds of message, and their one encoding.

Each message kind (``_messages.Msg``) between a process and the head, and
from the head to a worker, has a record: a ``NamedTuple`` whose fields are
the message's, in wire order, in ``_to_head`` (requests and notices) or
``_from_head`` (worker orders, replies and the head's other messages).
``_KINDS`` here gives each record its kind; ``encode`` / ``encode_request``
turn a record into the tuple that travels; ``decode_to_head``,
``decode_order`` and ``decode_from_head`` turn a received tuple back into its
record. A request travels as ``(kind, req_id, *fields)``; a notice and a
message from the head as ``(kind, *fields)``: these functions are the only
code that knows this layout. Adding a message is a record in ``_to_head`` or
``_from_head``, a line in ``_KINDS``, and its handler.
"""

from __future__ import annotations

from typing import Any, NamedTuple, get_args

from rigd.actors import _from_head as f
from rigd.actors import _to_head as t
from rigd.actors._from_head import HeadMessage, WorkerOrder
from rigd.actors._messages import Msg
from rigd.actors._to_head import Notice, Request

__all__ = [
    "decode_from_head",
    "decode_order",
    "decode_to_head",
    "encode",
    "encode_request",
    "kind_of",
]

_KINDS: dict[type, Msg] = {
    t.Hello: Msg.HELLO,
    t.CreateActor: Msg.CREATE_ACTOR,
    t.GetActor: Msg.GET_ACTOR,
    t.ActorAddress: Msg.ACTOR_ADDRESS,
    t.Kill: Msg.KILL,
    t.SubmitTask: Msg.SUBMIT_TASK,
    t.DeathReason: Msg.DEATH_REASON,
    t.ListActors: Msg.LIST_ACTORS,
    t.ResourcesNow: Msg.RESOURCES,
    t.CancelTask: Msg.CANCEL_TASK,
    t.ListTasks: Msg.LIST_TASKS,
    t.RefGet: Msg.REF_GET,
    t.CreatePlacementGroup: Msg.CREATE_PLACEMENT_GROUP,
    t.PlacementGroupReady: Msg.PLACEMENT_GROUP_READY,
    t.RemovePlacementGroup: Msg.REMOVE_PLACEMENT_GROUP,
    t.PlacementGroupTable: Msg.PLACEMENT_GROUP_TABLE,
    t.RefCancel: Msg.REF_CANCEL,
    t.Acquire: Msg.ACQUIRE,
    t.Release: Msg.RELEASE,
    t.Lend: Msg.LEND,
    t.Blocked: Msg.BLOCKED,
    t.Unblocked: Msg.UNBLOCKED,
    t.TaskEvents: Msg.TASK_EVENTS,
    t.ActorReady: Msg.ACTOR_READY,
    t.ActorFailed: Msg.ACTOR_FAILED,
    t.TaskDone: Msg.TASK_DONE,
    t.TaskItem: Msg.TASK_ITEM,
    t.Exiting: Msg.EXITING,
    t.RefValue: Msg.REF_VALUE,
    f.StartActor: Msg.START_ACTOR,
    f.RunTask: Msg.RUN_TASK,
    f.Terminate: Msg.TERMINATE,
    f.CancelRunning: Msg.CANCEL_TASK,
    f.HeadReply: Msg.HEAD_REPLY,
    f.HeadItem: Msg.HEAD_ITEM,
    f.RefWanted: Msg.REF_WANTED,
    f.RefCancelWanted: Msg.REF_CANCEL_WANTED,
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
