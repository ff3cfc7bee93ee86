"""rigd's exceptions, as ``rigd.exceptions`` (Ray's ``ray.exceptions``)."""

from rigd._exceptions import (
    ActorDiedError,
    GetTimeoutError,
    ResourceUnavailableError,
    RigdError,
    RuntimeNotRunningError,
    TaskCancelledError,
    TaskError,
    WorkerCrashedError,
)

__all__ = [
    "ActorDiedError",
    "GetTimeoutError",
    "ResourceUnavailableError",
    "RigdError",
    "RuntimeNotRunningError",
    "TaskCancelledError",
    "TaskError",
    "WorkerCrashedError",
]
