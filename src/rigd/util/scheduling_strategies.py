"""Ray's ``ray.util.scheduling_strategies``: accepted, with their one-machine meaning.

Every strategy places the actor or task on this machine (see the README).
"""

from rigd.actors._scheduling import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

__all__ = ["NodeAffinitySchedulingStrategy", "PlacementGroupSchedulingStrategy"]
