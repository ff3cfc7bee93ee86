"""rigd's exceptions, as ``rigd.exceptions`` (Ray's ``ray.exceptions``).

Ray's names are here too, for code that catches them: ``RayError`` is
``RigdError``, ``RayTaskError`` is ``TaskError`` and ``RayActorError`` is
``ActorDiedError`` (Ray's ``ActorDiedError`` is its subclass; here they are
one class).

Every error class rigd defines is here, whichever layer raises it (the tree
is drawn in ``rigd._exceptions``): the pipeline file's ``PipelineFileError``
and ``ServiceConfigError`` (also in ``rigd.config``), ``ExpressionError`` and ``OptionValueError``
(raised in ``rigd.pipeline``), and the service's ``TransitionError``,
``InsufficientStorageError``, ``NotFoundError``, ``ApiError`` and
``CamerasUnavailableError``.
"""

from rigd._exceptions import (
    ActorDiedError,
    ApiError,
    CamerasUnavailableError,
    EndOfStream,
    ExpressionError,
    GetTimeoutError,
    InsufficientStorageError,
    NotFoundError,
    ObjectLostError,
    ObjectNotFoundError,
    OptionValueError,
    OwnerDiedError,
    PipelineFailedError,
    PipelineFileError,
    RecordingError,
    ResourceUnavailableError,
    RigdError,
    RingBrokenError,
    RingClosedError,
    RingLayoutError,
    RuntimeNotRunningError,
    ServiceConfigError,
    TaskCancelledError,
    TaskError,
    TransitionError,
    WorkerCrashedError,
    WouldBlock,
)

#: Ray's names for the same classes.
RayError = RigdError
RayTaskError = TaskError
RayActorError = ActorDiedError

__all__ = [
    "ActorDiedError",
    "ApiError",
    "CamerasUnavailableError",
    "EndOfStream",
    "ExpressionError",
    "GetTimeoutError",
    "InsufficientStorageError",
    "NotFoundError",
    "ObjectLostError",
    "ObjectNotFoundError",
    "OptionValueError",
    "OwnerDiedError",
    "PipelineFailedError",
    "PipelineFileError",
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
    "ServiceConfigError",
    "TaskCancelledError",
    "TaskError",
    "TransitionError",
    "WorkerCrashedError",
    "WouldBlock",
]
