"""What the code running inside a worker may ask about where it runs."""

from __future__ import annotations

from typing import Any

__all__ = ["ActorExit", "actor_loops", "current_actor", "current_task"]


class ActorExit(BaseException):
    """Raised by ``exit_actor()`` to end the actor after the current call.

    A ``BaseException``, so that ``except Exception`` in user code does not
    swallow it.
    """


#: The actor this process serves, once its constructor ran (workers only).
current_actor: Any = None
#: The id of the task this worker is running, if any.
current_task: int | None = None
#: The event loops of an async actor, one per concurrency group (workers
#: only): a blocking rigd.get on one would freeze every call of its group.
actor_loops: set[Any] = set()
