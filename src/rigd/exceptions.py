"""rigd's exceptions, as ``rigd.exceptions`` (Ray's ``ray.exceptions``).

Ray's names are here too, for code that catches them: ``RayError`` is
``RigdError``, ``RayTaskError`` is ``TaskError`` and ``RayActorError`` is
``ActorDiedError`` (Ray's ``ActorDiedError`` is its subclass; here they are
one class).
"""

from rigd._exceptions import (
    ActorDiedError,
    EndOfStream,
    GetTimeoutError,
    ObjectLostError,
    OwnerDiedError,
    PipelineFailedError,
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

#: Ray's names for the same classes.
RayError = RigdError
RayTaskError = TaskError
RayActorError = ActorDiedError

__all__ = [
    "ActorDiedError",
    "EndOfStream",
    "GetTimeoutError",
    "ObjectLostError",
    "OwnerDiedError",
    "PipelineFailedError",
    "RayActorError",
    "RayError",
    "RayTaskError",
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
