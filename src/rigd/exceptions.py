"""rigd's exceptions, as ``rigd.exceptions`` (Ray's ``ray.exceptions``)."""

from rigd._exceptions import (
    ActorDiedError,
    EndOfStream,
    GetTimeoutError,
    OwnerDiedError,
    RecordingError,
    ResourceUnavailableError,
    RigdError,
    RingBrokenError,
    RingClosedError,
    RingLayoutError,
    RuntimeNotRunningError,
    TaskCancelledError,
    TaskError,
    WorkerCrashedError,
    WouldBlock,
)

__all__ = [
    "ActorDiedError",
    "EndOfStream",
    "GetTimeoutError",
    "OwnerDiedError",
    "RecordingError",
    "ResourceUnavailableError",
    "RigdError",
    "RingBrokenError",
    "RingClosedError",
    "RingLayoutError",
    "RuntimeNotRunningError",
    "TaskCancelledError",
    "TaskError",
    "WorkerCrashedError",
    "WouldBlock",
]
