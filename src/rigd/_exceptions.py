"""The whole error tree of rigd: every exception class the package defines.

::

    RigdError
    ├── TaskError             a method or task raised; also an instance of the
    │   │                     original exception's class
    │   └── TaskCancelledError  the call was cancelled with rigd.cancel (a
    │                         TaskError, so ``except RayTaskError`` catches it)
    ├── ActorDiedError        the actor's process is gone (killed, crashed,
    │                         exited, or its constructor failed)
    ├── WorkerCrashedError    the worker running a task died (after retries)
    ├── ObjectLostError       a ref's value can no longer be had
    │   └── OwnerDiedError    the process that owns a borrowed ref died before
    │                         its value was ready
    ├── GetTimeoutError       rigd.get or rigd.wait ran out of time (also a
    │                         TimeoutError)
    ├── RuntimeNotRunningError  the runtime was shut down under a call
    ├── ResourceUnavailableError  a resource request can never be met (also a
    │                         ValueError)
    ├── EndOfStream           a ring's writer closed it and every frame was read
    ├── RingClosedError       a ring endpoint was used after we closed it
    ├── RingBrokenError       the process at the other end of a ring died
    ├── RingLayoutError       a segment is not a ring of this layout version
    │                         (also a ValueError)
    ├── RecordingError        a recording stopped on a write error (also an
    │                         OSError); the file keeps what was written
    ├── WouldBlock            a *_nowait call would have had to wait
    ├── MessageTooLargeError  a message is over its link's max_message_bytes;
    │                         not sent (also a ValueError)
    ├── SerializationError    an object could not be pickled for a messages
    │                         link or the store (also a TypeError)
    ├── ObjectNotFoundError   improv's ``client.get``: nothing is stored under
    │                         the key (also a KeyError; rigd.compat.improv)
    ├── PipelineFileError     a pipeline file is wrong, nothing started (also a
    │   │                     ValueError; rigd.config)
    │   └── ServiceConfigError  a service config is wrong, the daemon did not
    │                         start (rigd.config)
    ├── PipelineFailedError   a pipeline's actor died for good (its restarts
    │                         spent, or too many failing steps; rigd.pipeline)
    ├── ExpressionError       a trigger expression is not allowed or not well
    │                         formed (also a ValueError; rigd.pipeline)
    ├── IllegalTransitionError  a run moved between states its transition table
    │                         does not list: a bug in rigd (also a RuntimeError;
    │                         rigd.pipeline)
    ├── TransitionError       the daemon's state does not allow the request
    │                         (HTTP 409; rigd.service)
    ├── InsufficientStorageError  the run cannot fit the data directory's free
    │                         space (HTTP 507; rigd.service)
    ├── NotFoundError         no such run or pipeline file (HTTP 404; also a
    │                         LookupError; rigd.service)
    ├── UnauthorizedError     no bearer token, or a wrong one (HTTP 401;
    │                         rigd.service)
    ├── UnsupportedMediaError  a request body of a Content-Type the endpoint
    │                         does not take (HTTP 415; rigd.service)
    ├── ApiError              the daemon answered the CLI's client with an error,
    │                         or could not be reached (rigd.service)
    └── CamerasUnavailableError  no camera can be listed: Aravis or PyGObject is
                              missing (also a RuntimeError; rigd.service)

Each class is defined here, once; the modules that raise it import it from
here, and the public packages (``rigd.exceptions``, ``rigd.config``,
``rigd.pipeline``, ``rigd.service``) export it under the same name. A class
that is also a built-in error (``ValueError``, ``OSError``, ...) stays one, so
``except ValueError:`` written before it joined the tree still catches it.
``tests/test_error_tree.py`` walks the package and fails on an exception class
defined outside this tree.

Not an error, and so not in the tree: ``rigd.actor.exit_actor``'s
``ActorExit`` derives from ``BaseException`` (as ``SystemExit`` does), so an
actor's own ``except Exception:`` never swallows the exit.

Errors of the caller's own making (a wrong argument, an unknown option) are
plain ``TypeError``/``ValueError``/``AttributeError`` raised at the call site.

Why over 400 lines: the whole tree is here by design (one place to read it,
and a test walks it); each class is a few lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "ActorDiedError",
    "ApiError",
    "CamerasUnavailableError",
    "EndOfStream",
    "ExpressionError",
    "GetTimeoutError",
    "IllegalTransitionError",
    "InsufficientStorageError",
    "MessageTooLargeError",
    "NotFoundError",
    "ObjectLostError",
    "ObjectNotFoundError",
    "OwnerDiedError",
    "PipelineFailedError",
    "PipelineFileError",
    "RecordingError",
    "ResourceUnavailableError",
    "RigdError",
    "RingBrokenError",
    "RingClosedError",
    "RingLayoutError",
    "RuntimeNotRunningError",
    "SerializationError",
    "ServiceConfigError",
    "TaskCancelledError",
    "TaskError",
    "TransitionError",
    "UnauthorizedError",
    "UnsupportedMediaError",
    "WorkerCrashedError",
    "WouldBlock",
]


class RigdError(Exception):
    """Root of every error rigd raises on its own account."""


class ObjectLostError(RigdError):
    """Raised by ``rigd.get`` when a ref's value can no longer be had.

    Ray's name; rigd has no object store to evict from, so its only case is
    ``OwnerDiedError``.
    """


class OwnerDiedError(ObjectLostError):
    """Raised by ``rigd.get`` on a ref that came nested in an argument or result,
    when the process that made it (its owner) died before its value was ready.

    Not raised for refs whose value was ready when they were passed: those
    travel with their value.
    """


class TaskError(RigdError):
    """Raised by ``rigd.get`` when the remote method or task raised.

    The instance is also an instance of the original exception's class, so
    ``except ValueError:`` still catches a remote ``ValueError``. The remote
    traceback is in ``remote_traceback`` and in the message. You do not get it
    when the actor's process died: that is ``ActorDiedError``.
    """

    cause_class_name: str
    remote_traceback: str
    function_name: str

    def __init__(self, function_name: str, cause_class_name: str, remote_traceback: str) -> None:
        super().__init__(function_name, cause_class_name, remote_traceback)
        self.function_name = function_name
        self.cause_class_name = cause_class_name
        self.remote_traceback = remote_traceback

    def __str__(self) -> str:
        return (
            f"{self.cause_class_name} raised in {self.function_name}\n"
            f"{self.remote_traceback.rstrip()}"
        )

    @classmethod
    def from_remote(
        cls,
        function_name: str,
        cause: BaseException | None,
        cause_class_name: str,
        remote_traceback: str,
    ) -> TaskError:
        """Build the error for a remote failure, mixing in the cause's class.

        Args:
            function_name: ``Class.method`` or the task's name.
            cause: the remote exception, if it could be unpickled.
            cause_class_name: the qualified name of its class.
            remote_traceback: the formatted remote traceback.

        Returns:
            An instance of a subclass of both ``TaskError`` and the cause's
            class when that class allows it, else a plain ``TaskError``.
        """
        if cause is not None and not isinstance(cause, TaskError):
            mixed = _mixed_class(type(cause))
            if mixed is not None:
                err = mixed.__new__(mixed)
                err.args = cause.args
                err.__dict__.update(getattr(cause, "__dict__", {}))
                err.function_name = function_name
                err.cause_class_name = cause_class_name
                err.remote_traceback = remote_traceback
                err.__cause__ = cause
                return err
        err = cls(function_name, cause_class_name, remote_traceback)
        err.__cause__ = cause
        return err


_MIXED: dict[type[BaseException], type[TaskError] | None] = {}


def _mixed_class(cause_class: type[BaseException]) -> type[TaskError] | None:
    if cause_class in _MIXED:
        return _MIXED[cause_class]
    try:
        mixed: type[TaskError] | None = type(
            f"TaskError({cause_class.__name__})",
            (TaskError, cause_class),
            {"__str__": TaskError.__str__, "__module__": __name__},
        )
    except TypeError:
        # Some classes cannot share a layout with Exception (a C extension's
        # own base, say); those fall back to a plain TaskError.
        mixed = None
    _MIXED[cause_class] = mixed
    return mixed


class ActorDiedError(RigdError):
    """Raised by a call whose actor is dead or dies before it answers.

    The message says why: killed with ``rigd.kill``, exited through
    ``exit_actor``, its process ended (a signal, an exit code), or its
    constructor raised (with that error). You do not get it for an exception
    raised by a method of a live actor: that is ``TaskError``.
    """


class WorkerCrashedError(RigdError):
    """Raised by a task whose worker process died, once its retries are spent.

    A task is retried ``max_retries`` times (3 by default, as in Ray) before
    this is raised. An exception raised by the task itself is ``TaskError``.
    """


class TaskCancelledError(TaskError):
    """Raised by ``rigd.get`` on the ref of a call that ``rigd.cancel`` cancelled.

    A subclass of ``TaskError`` (not of ``WorkerCrashedError``), so code
    written for Ray's guide (``except RayTaskError``) catches it. You get it
    for a call not yet started (dropped), for a running task (it gets
    ``KeyboardInterrupt`` in its worker, or with ``force=True`` its worker
    is killed), for a running call of an async actor (it gets
    ``asyncio.CancelledError``), and from the next item of a cancelled
    streaming generator. You do not get it for a running call of a serial or
    threaded actor: that call is not interrupted and returns as usual.
    """

    def __init__(self, message: str) -> None:
        super().__init__("", "TaskCancelledError", "")
        self.args = (message,)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        return (TaskCancelledError, (self.message,))


class GetTimeoutError(RigdError, TimeoutError):
    """Raised by ``rigd.get`` when the result is not ready within ``timeout``.

    The call itself goes on; a later ``rigd.get`` can still return its result.
    """


class RuntimeNotRunningError(RigdError):
    """Raised by a call that was still waiting when ``rigd.shutdown`` ran."""


class ResourceUnavailableError(RigdError, ValueError):
    """Raised at creation when an actor or task asks for more than exists.

    A request that fits the runtime's totals but not what is free right now is
    not an error: it waits, as in Ray.
    """


class EndOfStream(RigdError):  # noqa: N818 - an outcome, not an error (trio: EndOfChannel)
    """Raised by a ring reader once the writer closed the ring and all is read.

    Not raised while frames remain: a reader drains the ring first. Distinct
    from a timeout (``TimeoutError``) and from a dead writer
    (``RingBrokenError``).
    """


class RingClosedError(RigdError):
    """Raised when a ring endpoint is used after it was closed on this side."""


class RingBrokenError(RigdError):
    """Raised when the process at the other end of a ring died.

    A reader gets it once it has read every frame the dead writer committed.
    A writer does not get it for a dead lossless reader: that reader is
    dropped (and counted), so the writer goes on.
    """


class RingLayoutError(RigdError, ValueError):
    """Raised when attaching to a segment that is not a ring, or of another layout version."""


class WouldBlock(RigdError):  # noqa: N818 - trio's name for it
    """Raised by ``put_nowait``/``get_nowait`` when the call would have to wait."""


class MessageTooLargeError(RigdError, ValueError):
    """A message is larger than its link's ``max_message_bytes``; it was not sent."""


class SerializationError(RigdError, TypeError):
    """An object could not be pickled (or a packed area is not one)."""


class ObjectNotFoundError(RigdError, KeyError):
    """Nothing is stored under the key improv's ``client.get`` asked for (improv's name).

    Raised by ``rigd.compat.improv.StoreClient``; a ``KeyError``, as the
    store's own ``get`` raises.
    """


class RecordingError(RigdError, OSError):
    """Raised when a recording stops because a write failed (full disk, I/O error).

    The file keeps every frame written before the failure and stays readable
    (``rigd recover`` seals it if the writer could not). ``path`` is the file
    and ``frames_written`` what it holds per stream.
    """

    def __init__(self, message: str, path: str = "", frames_written: dict[str, int] | None = None):
        super().__init__(message)
        self.path = path
        self.frames_written = dict(frames_written or {})

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.path, self.frames_written))


# -- configuration (rigd.config) ---------------------------------------------------------


class PipelineFileError(RigdError, ValueError):
    """A pipeline file is wrong; nothing was started. The message names file, line and key.

    ``problems`` lists every problem found (one line each); the message is
    those lines. Raised by ``rigd.config.load_pipeline`` and by planning a
    pipeline (``rigd.pipeline.plan_pipeline``).
    """

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ServiceConfigError(PipelineFileError):
    """A service config is wrong; the daemon did not start. Names file, line and key."""


# -- the pipeline layer (rigd.pipeline) ------------------------------------------------


class ExpressionError(RigdError, ValueError):
    """A trigger expression that is not allowed or not well formed.

    Raised by ``rigd.pipeline.Expression`` at load, with the column of the
    problem; a ``ValueError`` too, as it was before it joined the tree.
    """


class PipelineFailedError(RigdError):
    """Raised by ``Pipeline.wait`` when an actor of the run died for good.

    For good: its restarts (``max_restarts``) are spent, or it gave up after
    ``max_step_errors`` failing steps in a row. The pipeline is then being
    stopped cleanly (its files are sealed); ``Pipeline.stop`` returns the
    report, whose ``failure`` holds the same message. Not raised for a run
    stopped on purpose, nor for an actor that restarts and goes on.
    ``actor`` is the actor's name and ``last_error`` its last ``run_step``
    error (``"ValueError: ..."``), or ``None`` when it died without one (a
    crash or a kill).
    """

    def __init__(self, message: str, actor: str = "", last_error: str | None = None) -> None:
        super().__init__(message)
        self.actor = actor
        self.last_error = last_error

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.actor, self.last_error))


# -- the service (rigd.service) ----------------------------------------------------------


class IllegalTransitionError(RigdError, RuntimeError):
    """A move the transition table does not list: a bug in rigd, reported as one."""


class TransitionError(RigdError):
    """The request is not allowed in the daemon's state (HTTP 409)."""


class InsufficientStorageError(RigdError):
    """The run cannot fit the free space of the data directory (HTTP 507)."""


class NotFoundError(RigdError, LookupError):
    """No such run or pipeline file (HTTP 404)."""


class UnauthorizedError(RigdError):
    """No bearer token, or a wrong one (HTTP 401, with ``WWW-Authenticate: Bearer``)."""


class UnsupportedMediaError(RigdError):
    """A body whose Content-Type the endpoint does not take (HTTP 415)."""


class ApiError(RigdError):
    """The daemon answered the CLI's REST client with an error, or could not be reached.

    ``status`` is the HTTP status, or ``None`` when no answer came.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class CamerasUnavailableError(RigdError, RuntimeError):
    """Raised when no camera can be listed because Aravis (or PyGObject) is missing."""
