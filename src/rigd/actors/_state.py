"""Introspection: what actors the session has, as frozen records."""

from __future__ import annotations

from dataclasses import dataclass

from rigd.actors import _session
from rigd.actors._messages import Msg

__all__ = ["ActorInfo", "list_actors"]


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


def list_actors(*, state: str | None = None, class_name: str | None = None) -> list[ActorInfo]:
    """Return the session's actors, living and dead, optionally filtered.

    Args:
        state: only actors in this state (``pending``, ``starting``, ``alive``,
            ``dead``).
        class_name: only actors of this class.
    """
    rows = _session.get_runtime().head_call(Msg.LIST_ACTORS)
    infos = [ActorInfo(**row) for row in rows]
    return [
        i
        for i in infos
        if (state is None or i.state == state)
        and (class_name is None or i.class_name == class_name)
    ]
