"""What the code running inside a worker may ask about where it runs."""

from __future__ import annotations

from typing import Any

__all__ = ["ActorExit", "actor_loop", "current_actor", "current_task"]


class ActorExit(BaseException):
    """Raised by ``exit_actor()`` to end the actor after the current call.

    A ``BaseException``, so that ``except Exception`` in user code does not
    swallow it.
    """


#: The actor this process serves, once its constructor ran (workers only).
current_actor: Any = None
#: The id of the task this worker is running, if any.
current_task: int | None = None
#: The event loop of an async actor (workers only): a blocking rigd.get on it
#: would freeze every call of the actor.
actor_loop: Any = None
