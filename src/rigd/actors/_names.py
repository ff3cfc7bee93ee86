"""Named actors: the head's registry of ``(namespace, name) -> actor``."""

from __future__ import annotations

from rigd.actors._head_records import ActorRecord

__all__ = ["NameRegistry", "name_taken"]


class NameRegistry:
    """Which actor holds each name in each namespace (Ray's named actors)."""

    def __init__(self) -> None:
        self._names: dict[tuple[str, str], ActorRecord] = {}

    def lookup(self, namespace: str, name: str) -> ActorRecord | None:
        """The actor named ``name`` in ``namespace``, or None."""
        return self._names.get((namespace, name))

    def claim(self, actor: ActorRecord) -> None:
        """Give ``actor`` its name (the caller checked it is free)."""
        if actor.options.name is not None:
            self._names[(actor.namespace, actor.options.name)] = actor

    def free(self, actor: ActorRecord) -> None:
        """Free ``actor``'s name, if it still holds it."""
        if actor.options.name is not None:
            key = (actor.namespace, actor.options.name)
            if self._names.get(key) is actor:
                del self._names[key]


def name_taken(namespace: str, name: str, holder: ActorRecord) -> ValueError:
    """The error of creating an actor named ``name`` while ``holder`` has the name."""
    return ValueError(
        f"The name {name!r} is already taken in namespace {namespace!r} by "
        f"actor {holder.class_name} ({holder.actor_id}); pass "
        f"get_if_exists=True to reuse it, or choose another name"
    )
