"""The actor runtime's errors: what a call, a task, a ref or ``rigd.get`` raises.

Part of the tree drawn in ``rigd._exceptions``, which exports every class.
"""

from __future__ import annotations

from rigd._exceptions._root import RigdError

__all__ = [
    "ActorDiedError",
    "GetTimeoutError",
    "ObjectLostError",
    "OwnerDiedError",
    "ResourceUnavailableError",
    "RuntimeNotRunningError",
    "TaskCancelledError",
    "TaskError",
    "WorkerCrashedError",
]


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
            {"__str__": TaskError.__str__, "__module__": "rigd._exceptions"},
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
