"""Ray's ``ray.util.placement_group``: bundles of CPUs and GPUs reserved ahead, on one machine.

See ``rigd.actors._placement_group`` (the API) and ``_placement_groups``
(the head's reservations), and the README's "Differences from Ray".
"""

from rigd.actors import (
    PlacementGroup,
    get_placement_group,
    placement_group,
    placement_group_table,
    remove_placement_group,
)

__all__ = [
    "PlacementGroup",
    "get_placement_group",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
]
