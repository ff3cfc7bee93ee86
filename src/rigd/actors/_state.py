"""Introspection: what actors the session has, as frozen records."""

from __future__ import annotations

from dataclasses import dataclass

from rigd.actors import _session
from rigd.actors._to_head import ListActors, ListTasks

__all__ = ["ActorInfo", "TaskInfo", "list_actors", "list_tasks"]


@dataclass(frozen=True, slots=True)
class ActorInfo:
    """One actor of the session, as the head knows it."""

    actor_id: str
    class_name: str
    name: str | None
    namespace: str
    state: str
    pid: int | None
    detached: bool
    death_reason: str | None
    restarts: int
    #: What it asked for, and the GPUs (NVML indexes) it was given.
    num_gpus: float = 0.0
    gpu_ids: tuple[int, ...] = ()
    #: Why a pending actor waits (the resource it needs and what is free).
    waiting_for: str | None = None


def list_actors(*, state: str | None = None, class_name: str | None = None) -> list[ActorInfo]:
    """Return the session's actors, living and dead, optionally filtered.

    Args:
        state: only actors in this state (``pending``, ``starting``, ``alive``,
            ``dead``).
        class_name: only actors of this class.
    """
    rows = _session.get_runtime().head_call(ListActors())
    infos = [ActorInfo(**row) for row in rows]
    return [
        i
        for i in infos
        if (state is None or i.state == state)
        and (class_name is None or i.class_name == class_name)
    ]


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """One actor call or task, as its events tell it (times are UNIX seconds)."""

    task_id: str
    name: str | None
    actor_id: str | None
    state: str
    submitted_at: float | None
    started_at: float | None
    finished_at: float | None
    error: str | None


def list_tasks(
    *, actor_id: str | None = None, state: str | None = None, name: str | None = None
) -> list[TaskInfo]:
    """Return recent actor calls and tasks (the last 10,000), optionally filtered.

    Events reach the head in batches, so a call finished less than 0.2 s ago
    may still show its previous state.

    Args:
        actor_id: only calls of this actor (``handle._actor_id``, or
            ``ActorInfo.actor_id``).
        state: ``SUBMITTED``, ``RUNNING``, ``FINISHED``, ``FAILED`` or
            ``ACTOR_RESTARTED``.
        name: only this ``Class.method`` or task name.
    """
    runtime = _session.get_runtime()
    runtime.flush_events()
    rows = runtime.head_call(ListTasks())
    infos = [TaskInfo(**row) for row in rows]
    return [
        i
        for i in infos
        if (actor_id is None or i.actor_id == actor_id)
        and (state is None or i.state == state)
        and (name is None or i.name == name)
    ]
