"""Ray's scheduling strategies, with their meaning on one machine.

Ray code names a strategy with ``scheduling_strategy=`` on actors and tasks
to choose among the nodes of a cluster. A rigd session is one machine, so
every strategy is accepted and places the actor or task on it, as Ray does
on a one-node cluster:

- ``"DEFAULT"`` and ``"SPREAD"``: this machine (there is nothing to spread over).
- ``NodeAffinitySchedulingStrategy``: this machine, whatever node it names.
- ``PlacementGroupSchedulingStrategy``: an actor draws its CPUs and GPUs from
  its bundle of a ``rigd.util.placement_group`` (reserved ahead, see
  ``_placement_groups``) and waits while the group is pending; a task's are
  reserved from the session's pool as always.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "SCHEDULING_STRATEGY_NAMES",
    "NodeAffinitySchedulingStrategy",
    "PlacementGroupSchedulingStrategy",
    "check_scheduling_strategy",
]

#: The strategies Ray names with a string.
SCHEDULING_STRATEGY_NAMES = ("DEFAULT", "SPREAD")


@dataclass(frozen=True, slots=True)
class NodeAffinitySchedulingStrategy:
    """Ray's node affinity: run on ``node_id`` (on one machine: on it).

    Args:
        node_id: the node Ray code names.
        soft: whether Ray may run elsewhere when that node is gone.
    """

    node_id: str
    soft: bool
    _spill_on_unavailable: bool = False
    _fail_on_unavailable: bool = False


@dataclass(frozen=True, slots=True)
class PlacementGroupSchedulingStrategy:
    """Ray's placement-group strategy (on one machine: this machine).

    Args:
        placement_group: the placement group Ray code names.
        placement_group_bundle_index: the bundle (-1: any).
        placement_group_capture_child_tasks: whether children join the group.
    """

    placement_group: Any
    placement_group_bundle_index: int = -1
    placement_group_capture_child_tasks: bool | None = None


def check_scheduling_strategy(value: object) -> None:
    """Raise ``ValueError`` unless ``value`` is one of Ray's strategies (or None)."""
    if value is None or value in SCHEDULING_STRATEGY_NAMES:
        return
    if isinstance(value, NodeAffinitySchedulingStrategy):
        return
    if isinstance(value, PlacementGroupSchedulingStrategy):
        if isinstance(value.placement_group, str):  # None: no group (the pool), as Ray's
            raise ValueError(
                f"PlacementGroupSchedulingStrategy needs the group rigd.util.placement_group() "
                f"returned, got {value.placement_group!r}"
            )
        index = value.placement_group_bundle_index
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"placement_group_bundle_index must be an int, got {index!r}")
        return
    raise ValueError(
        f"scheduling_strategy must be 'DEFAULT', 'SPREAD', a NodeAffinitySchedulingStrategy "
        f"or a PlacementGroupSchedulingStrategy (from rigd.util.scheduling_strategies), "
        f"got {value!r}"
    )
