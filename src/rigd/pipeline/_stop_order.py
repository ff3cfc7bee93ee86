"""The order a clean stop takes, with bridges: a receiver (fed from another
machine) and what reads it stop after the senders have ended their streams.

Apart from the bridge actors themselves, so that what stops actors (the
supervisor's ``_run_end``, ``_inline``'s replays) does not import ZMQ.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["fed_from_afar", "stop_order"]


class ActorPlanLike(Protocol):
    """What ``stop_order`` needs of an actor's plan."""

    @property
    def name(self) -> str: ...
    @property
    def cls(self) -> type: ...
    @property
    def upstream(self) -> tuple[str, ...]: ...


_A = TypeVar("_A", bound=ActorPlanLike)


def fed_from_afar(cls: type) -> bool:
    """Whether actors of ``cls`` have no input here but a stream from elsewhere
    (a bridge receiver): a clean stop waits for that stream's end, as for an input."""
    return bool(getattr(cls, "fed_from_afar", False))


def stop_order(actors: Sequence[_A]) -> list[_A]:
    """The order a clean stop takes: ``actors`` (sources first) with the
    bridge receivers, and everything downstream of them, moved last.

    The senders then end their streams (their sources stopped) before the
    receivers are waited for, and the receivers drain before what reads them.
    """
    fed: set[str] = set()
    for actor in actors:
        if fed_from_afar(actor.cls) or any(name in fed for name in actor.upstream):
            fed.add(actor.name)
    return [a for a in actors if a.name not in fed] + [a for a in actors if a.name in fed]
