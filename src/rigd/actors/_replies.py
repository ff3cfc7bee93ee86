"""Replies to calls and tasks: ``REPLY_ERR`` built from an exception and
turned back into the one ``rigd.get`` raises, and a task's reply body
delivered to its ref.
"""

from __future__ import annotations

import traceback
from typing import Any

from rigd._exceptions import RigdError, TaskError
from rigd.actors._generator import ObjectRefGenerator
from rigd.actors._messages import REPLY_END, REPLY_ERR, REPLY_OK
from rigd.actors._ref import ObjectRef
from rigd.actors._wire import dumps, loads

__all__ = ["error_reply", "finish_task_ref", "reply_error_to_exception"]


def error_reply(
    call_id: Any, function_name: str, exc: BaseException, shm_prefix: str
) -> tuple[Any, ...]:
    """Build a ``REPLY_ERR`` message for an exception raised by user code.

    The cause is pickled on its own, so a cause that cannot be pickled (or
    unpickled on the other side) still leaves its class name and traceback.
    """
    tb = "".join(traceback.format_exception(exc))
    try:
        cause: bytes | None = dumps(exc, shm_prefix)
    except Exception:  # noqa: BLE001 - boundary: any pickling failure means "no cause"
        cause = None
    cls = type(exc)
    return (REPLY_ERR, call_id, (cause, f"{cls.__module__}.{cls.__qualname__}", tb, function_name))


def reply_error_to_exception(payload: tuple[Any, ...]) -> BaseException:
    """Turn the payload of a ``REPLY_ERR`` into the exception ``rigd.get`` raises."""
    cause_body, class_name, tb, function_name = payload
    if class_name.startswith("rigd._exceptions.") and cause_body is not None:
        # rigd's own errors (ActorDiedError from exit_actor, a nested
        # TaskError) pass through as they are.
        try:
            exc = loads(cause_body)
            if isinstance(exc, RigdError):
                return exc
        except Exception:  # noqa: BLE001 - fall through to a plain TaskError
            pass
    cause: BaseException | None = None
    if cause_body is not None:
        try:
            cause = loads(cause_body)
        except Exception:  # noqa: BLE001 - the class may not import here
            cause = None
    return TaskError.from_remote(function_name, cause, class_name, tb)


def finish_task_ref(ref: Any, reply: ObjectRef[Any]) -> BaseException | None:
    """Deliver a task's reply (``reply``: the head's answer) to ``ref``; return its error."""
    if reply._error is not None:
        ref._set_error(reply._error)
        return reply._error
    message = loads(reply._value)
    if message[0] == REPLY_END:
        if isinstance(ref, ObjectRefGenerator):
            ref._end()
            return None
        unexpected = RigdError("the task streamed items, but its caller expected one value")
        ref._set_error(unexpected)
        return unexpected
    if message[0] == REPLY_OK:
        if isinstance(ref, ObjectRefGenerator):
            ref._push(message[2])
            ref._end()
        else:
            ref._set_value(message[2])
        return None
    error = reply_error_to_exception(message[2])
    ref._set_error(error)
    return error
