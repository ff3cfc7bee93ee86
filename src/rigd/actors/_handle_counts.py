"""Handle reference counts: which processes hold a handle to which actor.

A process sends ``ACQUIRE(actor, token)`` when it builds a handle from a
token and ``RELEASE(actor)`` when its last handle dies. Tokens cover handles
in flight: the head issues one with every ``CREATE_ACTOR`` and ``GET_ACTOR``
reply, and a process pickling a handle sends ``LEND(actor, token)`` first,
on the same ordered connection as its later ``RELEASE``. An actor is
unreferenced when no process holds it and no token is outstanding.
"""

from __future__ import annotations

import secrets

from rigd.actors._head_records import Peer

__all__ = ["HandleCounts"]


class HandleCounts:
    """Holders and outstanding tokens per actor id."""

    def __init__(self) -> None:
        self._holders: dict[str, set[Peer]] = {}
        self._tokens: dict[str, dict[str | None, int]] = {}

    def issue(self, actor_id: str) -> str:
        """A new token for a handle of ``actor_id`` on its way to a process."""
        token = secrets.token_hex(8)
        tokens = self._tokens.setdefault(actor_id, {})
        tokens[token] = tokens.get(token, 0) + 1
        return token

    def acquire(self, actor_id: str, peer: Peer, token: str | None) -> None:
        """``peer`` holds a handle now, built from ``token`` (None: it held one already)."""
        self._holders.setdefault(actor_id, set()).add(peer)
        self._count(actor_id, token, -1)

    def lend(self, actor_id: str, token: str) -> None:
        """A handle is on its way under ``token`` (pickled by a holder)."""
        self._count(actor_id, token, +1)

    def release(self, actor_id: str, peer: Peer) -> bool:
        """``peer`` holds no handle any more; True if it held one."""
        holders = self._holders.get(actor_id)
        if holders is None or peer not in holders:
            return False
        holders.discard(peer)
        return True

    def referenced(self, actor_id: str) -> bool:
        """Whether a process holds a handle to the actor or one is in flight."""
        if self._holders.get(actor_id):
            return True
        return any(count > 0 for count in self._tokens.get(actor_id, {}).values())

    def forget(self, actor_id: str) -> None:
        """Drop what is known of an actor the head forgets."""
        self._holders.pop(actor_id, None)
        self._tokens.pop(actor_id, None)

    def _count(self, actor_id: str, token: str | None, step: int) -> None:
        tokens = self._tokens.setdefault(actor_id, {})
        left = tokens.get(token, 0) + step
        if left:
            tokens[token] = left
        else:
            tokens.pop(token, None)
