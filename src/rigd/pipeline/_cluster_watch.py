"""Watching a cluster run's node supervisors: one question per node at a time.

``ClusterPipeline`` (``_cluster``) asks every node supervisor, each
``POLL_S``, whether its node's part ended (``NodeSupervisor.wait(0)``), all
at once, and waits for each answer at most ``ANSWER_S``. There is never more
than one question in flight per node: a node that does not answer is not sent
more (Ray queues calls to a busy actor without limit, so asking again each
round would pile them up in the driver and on the node).

A node supervisor that died (its process killed, its node removed: Ray's
``ActorDiedError``), or that did not answer within ``ANSWER_S`` (hung, or its
node unreachable: ``GetTimeoutError``), or whose call failed otherwise, is a
node *lost*: ``poll_nodes`` names it and says what happened, and the caller
fails the run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rigd._exceptions import ActorDiedError, GetTimeoutError
from rigd.actors import get

__all__ = ["ANSWER_S", "POLL_S", "Lost", "poll_nodes"]

#: Seconds between two rounds of questions.
POLL_S = 0.5
#: Seconds a node supervisor has to answer before it counts as lost (a loaded node
#: answers within milliseconds; Ray declares a dead node's actors dead within its
#: health check's period, 15 s by default, or at once for a killed process).
ANSWER_S = 20.0


@dataclass(frozen=True)
class Lost:
    """A node lost: its name (its ``node:`` resource) and what happened, in one line."""

    node: str
    why: str


def poll_nodes(nodes: Mapping[str, Any], answer_s: float = ANSWER_S) -> Lost | bool:
    """Ask every node supervisor at once whether its part ended.

    Args:
        nodes: the node supervisors (Ray actor handles), by node name.
        answer_s: seconds each node has to answer (asked together, so a
            round takes about ``answer_s`` at most, unless several are slow).

    Returns:
        ``Lost`` for the first node that died, did not answer within
        ``answer_s`` or failed; else True when every node's part ended (on its
        own, or failed: its report says why), False while one still runs.
    """
    refs = {name: node.wait.remote(0.0) for name, node in nodes.items()}
    ended = True
    for name, ref in refs.items():
        try:
            ended = bool(get(ref, timeout=answer_s)) and ended
        except ActorDiedError as exc:
            return Lost(name, f"its node supervisor died ({_line(exc)})")
        except GetTimeoutError:
            return Lost(
                name,
                f"its node supervisor did not answer within {answer_s:g} s (hung, or its "
                "node unreachable); it is killed",
            )
        except Exception as exc:  # noqa: BLE001 - any failed call: that node is gone for the run
            return Lost(name, f"its node supervisor failed: {type(exc).__name__}: {_line(exc)}")
    return ended


def _line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
