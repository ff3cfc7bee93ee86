"""The errors of the layers above the runtime: pipeline files, runs, the daemon.

Part of the tree drawn in ``rigd._exceptions``, which exports every class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rigd._exceptions._root import RigdError

__all__ = [
    "ApiError",
    "CamerasUnavailableError",
    "ExpressionError",
    "IllegalTransitionError",
    "InsufficientStorageError",
    "NotFoundError",
    "OptionValueError",
    "PipelineFailedError",
    "PipelineFileError",
    "ServiceConfigError",
    "TransitionError",
    "UnauthorizedError",
    "UnsupportedMediaError",
]


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


class OptionValueError(RigdError, ValueError):
    """An actor option's value is refused (a recorder's ``when_behind``,
    ``template``, ``directory``, ...); ``option`` names the option, its key in
    the pipeline file, so planning names that key's line. A ``ValueError`` too.
    Raised by the recorders' constructors and their planning checks
    (``rigd.pipeline``).
    """

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option

    def __reduce__(self) -> tuple[type[OptionValueError], tuple[str, str]]:
        # Raised in an actor's process (a setup refusing its option) and unpickled here.
        return type(self), (self.option, str(self.args[0]))


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
