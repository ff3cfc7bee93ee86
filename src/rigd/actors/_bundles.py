"""What the head needs to know of a placement group's bundles, apart from the
user's ``PlacementGroup`` handle (``_placement_group``), which reaches the head
through the session: the head side imports this, never the handle's module."""

from __future__ import annotations

from typing import Any

__all__ = ["NODE_KEYS", "bundle_cpus_gpus", "group_of"]

#: Bundle keys every node has (Ray's); others are custom resources.
NODE_KEYS = ("CPU", "GPU", "memory", "object_store_memory")


def bundle_cpus_gpus(spec: dict[str, float]) -> tuple[float, float] | None:
    """``(CPUs, GPUs)`` of a bundle; None if it asks for a custom resource this machine lacks."""
    if any(amount > 0 and key not in NODE_KEYS for key, amount in spec.items()):
        return None
    return spec.get("CPU", 0.0), spec.get("GPU", 0.0)


def group_of(options: Any) -> tuple[bytes, int] | None:
    """``(group id, bundle index)`` of an actor's or task's options; None outside a
    group (rigd's own groups: their id is 16 bytes; Ray's are Ray's business)."""
    strategy = getattr(options, "scheduling_strategy", None)
    group = getattr(strategy, "placement_group", None)
    group_id = getattr(group, "id", None)
    if isinstance(group_id, bytes) and hasattr(group, "bundle_specs"):
        return group_id, int(getattr(strategy, "placement_group_bundle_index", -1))
    return None
