"""Ray's ``ray.util`` names that Ray code uses with actors and tasks."""

from rigd.util import placement_group as _placement_group_module
from rigd.util import scheduling_strategies
from rigd.util.actor_pool import ActorPool
from rigd.util.placement_group import (
    PlacementGroup,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

del _placement_group_module  # ``rigd.util.placement_group`` is the function, as in Ray

__all__ = [
    "ActorPool",
    "PlacementGroup",
    "get_placement_group",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
    "scheduling_strategies",
]
