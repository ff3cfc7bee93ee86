"""What the code running inside a worker may ask about where it runs."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GPU_IDS_ENV",
    "ActorExit",
    "ActorInfo",
    "actor_info",
    "actor_loops",
    "current_actor",
    "current_call",
    "current_task",
    "serial_call",
]


@dataclass(frozen=True, slots=True)
class ActorInfo:
    """Who the actor this worker runs is (set before its constructor runs)."""

    actor_id: str
    class_name: str
    name: str | None
    namespace: str
    restarts: int


class ActorExit(BaseException):
    """Raised by ``exit_actor()`` to end the actor after the current call.

    A ``BaseException``, so that ``except Exception`` in user code does not
    swallow it.
    """


#: The actor this process serves, once its constructor ran (workers only).
#: Set by the head in a GPU worker's environment: the indexes of its GPUs
#: (NVML's numbering), what ``rigd.get_gpu_ids()`` returns.
GPU_IDS_ENV = "RIGD_GPU_IDS"

current_actor: Any = None
#: The id of the task this worker is running, if any.
current_task: int | None = None
#: The event loops of an async actor, one per concurrency group (workers
#: only): a blocking rigd.get on one would freeze every call of its group.
actor_loops: set[Any] = set()
#: The actor this worker runs, set before its constructor (workers only).
actor_info: ActorInfo | None = None
#: The call a serial actor runs now: (task id or None, call id).
serial_call: tuple[str | None, int] | None = None
#: The call an actor's method is running for, as a task id (per thread or
#: coroutine: threaded and async actors run several at once).
current_call: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "rigd_current_call", default=None
)
