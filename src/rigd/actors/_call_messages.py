"""The hot path's messages (caller <-> actor), one typed function each.

A call and its replies stay plain tuples on the wire, whose first item is
the kind (``_messages``): a record per call costs measurable time at tens of
microseconds a round trip. These functions are the one place each tuple is
built, or a ``CALL`` read.
"""

from __future__ import annotations

from typing import Any

from rigd.actors._messages import CALL, CANCEL, CLOSE, REPLY_END, REPLY_ITEM, REPLY_OK

__all__ = [
    "CLOSE_MESSAGE",
    "call_message",
    "cancel_message",
    "read_call",
    "reply_end",
    "reply_item",
    "reply_ok",
]

#: The caller holds no more handles to the actor.
CLOSE_MESSAGE: tuple[int] = (CLOSE,)

#: A ``CALL``'s fields: call id, method, args, kwargs, concurrency group, task id.
CallFields = tuple[int, str, tuple[Any, ...], dict[str, Any], str | None, str | None]


def call_message(
    call_id: int,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    group: str | None,
    task_id: str | None,
) -> tuple[Any, ...]:
    """``CALL``: run ``method`` (``group``: its concurrency group; ``task_id``: for events)."""
    return (CALL, call_id, method, args, kwargs, group, task_id)


def read_call(message: tuple[Any, ...]) -> CallFields:
    """The fields of a ``CALL`` message."""
    return message[1:]


def cancel_message(call_id: int) -> tuple[int, int]:
    """``CANCEL``: drop the call if it has not started (interrupt a stream)."""
    return (CANCEL, call_id)


def reply_ok(call_id: Any, value: Any) -> tuple[int, Any, Any]:
    """``REPLY_OK``: the call's return value."""
    return (REPLY_OK, call_id, value)


def reply_item(call_id: Any, item: Any) -> tuple[int, Any, Any]:
    """``REPLY_ITEM``: one item of a generator method (or task)."""
    return (REPLY_ITEM, call_id, item)


def reply_end(call_id: Any) -> tuple[int, Any]:
    """``REPLY_END``: a generator method (or task) is done."""
    return (REPLY_END, call_id)
