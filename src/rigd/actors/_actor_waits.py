"""Callers waiting on an actor: for where it listens, and for its end.

A caller connects to an actor once the head tells it where the actor
listens (``ActorAddress``): at once when it is alive, else once it is (or
with ``ActorDiedError`` if it never will be). A caller whose connection
broke asks how the actor's process ended (``DeathReason``): the answer,
``(restarted, reason)``, comes once the process it was connected to has
ended. The waiters live on the actor's record (``ActorRecord``); the
``ActorTable`` (``_actor_table``) calls these as the actor's state moves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rigd._exceptions import ActorDiedError
from rigd.actors._head_records import ActorRecord, ActorState, Peer

__all__ = [
    "Reply",
    "answer_address",
    "answer_dead",
    "answer_death",
    "answer_ready",
    "answer_restarted",
]

#: ``reply(peer, req_id, payload, ok)``: answer a request.
Reply = Callable[[Peer, int, Any, bool], None]


def answer_address(
    reply: Reply, peer: Peer, req_id: int, actor_id: str, actor: ActorRecord | None
) -> None:
    """Answer where the actor listens: now if alive, once it is if starting."""
    if actor is None:
        reply(
            peer,
            req_id,
            ActorDiedError(
                f"no actor {actor_id} in this session; was it created before rigd.shutdown()?"
            ),
            False,
        )
    elif actor.state is ActorState.ALIVE:
        reply(peer, req_id, actor.address_info(), True)
    elif actor.state is ActorState.DEAD:
        reply(peer, req_id, ActorDiedError(actor.death_reason), False)
    else:
        actor.address_waiters.append((peer, req_id))


def answer_death(
    reply: Reply,
    peer: Peer,
    req_id: int,
    actor_id: str,
    incarnation: int,
    actor: ActorRecord | None,
) -> None:
    """Answer ``(restarted, reason)`` once the actor's process ``incarnation`` ended.

    ``incarnation`` is the restart count the caller was connected to: a
    later one means the actor restarted (and may be alive again already).
    """
    if actor is None:
        reply(peer, req_id, (False, f"no actor {actor_id} in this session"), True)
    elif actor.state is ActorState.DEAD:
        reply(peer, req_id, (False, actor.death_reason), True)
    elif actor.restarts > incarnation:
        reply(peer, req_id, (True, f"the actor {actor.class_name} restarted"), True)
    else:
        actor.death_waiters.append((peer, req_id))


def answer_ready(reply: Reply, actor: ActorRecord) -> None:
    """The actor listens now: tell who waits for its address."""
    for waiter, req_id in actor.address_waiters:
        reply(waiter, req_id, actor.address_info(), True)
    actor.address_waiters.clear()


def answer_restarted(reply: Reply, actor: ActorRecord, reason: str) -> None:
    """The actor's process ended and it restarts: tell who waits on that end."""
    for waiter, req_id in actor.death_waiters:
        reply(waiter, req_id, (True, reason), True)
    actor.death_waiters.clear()


def answer_dead(reply: Reply, actor: ActorRecord, reason: str) -> None:
    """The actor is dead for good: its address waiters get ``ActorDiedError``, its
    death waiters ``(False, reason)``."""
    error = ActorDiedError(reason)
    for waiter, req_id in actor.address_waiters:
        reply(waiter, req_id, error, False)
    actor.address_waiters.clear()
    for waiter, req_id in actor.death_waiters:
        reply(waiter, req_id, (False, reason), True)
    actor.death_waiters.clear()
