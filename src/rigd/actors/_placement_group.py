"""Ray's placement-group API on one machine: ``placement_group`` and its handle.

``placement_group(bundles, strategy=...)`` asks the head (``_placement_groups``)
to reserve the bundles' CPUs and GPUs from the session's pool; the returned
``PlacementGroup`` is Ray's handle: ``ready()`` (a ref filled once the bundles
are reserved), ``wait(timeout_seconds)``, ``bundle_specs``, ``bundle_count``.
Actors join a group with ``scheduling_strategy=PlacementGroupSchedulingStrategy(pg)``
or the older ``placement_group=`` option. Shapes and words follow Ray 2.60's
``ray.util.placement_group``.
"""

from __future__ import annotations

import os
from typing import Any

from rigd.actors._bundles import bundle_cpus_gpus, group_of

__all__ = [
    "STRATEGIES",
    "PlacementGroup",
    "bundle_cpus_gpus",
    "check_bundles",
    "check_fits",
    "group_of",
]

#: Ray's placement strategies.
STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


class PlacementGroup:
    """Ray's handle to a placement group.

    Args:
        id: the group's id (16 bytes).
        bundle_specs: each bundle's resources, e.g. ``[{"CPU": 1.0, "GPU": 1.0}]``.
    """

    def __init__(self, id: bytes, bundle_specs: list[dict[str, float]]) -> None:
        self.id = id
        self.bundle_specs = bundle_specs

    def __repr__(self) -> str:
        return f"PlacementGroup(id={self.id.hex()}, bundles={self.bundle_specs})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    @property
    def bundle_count(self) -> int:
        """How many bundles the group has."""
        return len(self.bundle_specs)

    @property
    def is_empty(self) -> bool:
        """Whether the group has no bundles."""
        return not self.bundle_specs

    def ready(self) -> Any:
        """An ``ObjectRef`` filled with this group once its bundles are reserved.

        A group that cannot be reserved (too large, STRICT_SPREAD over several
        bundles on one machine) leaves the ref pending, as in Ray; a removed
        group fills it with ``ValueError``.
        """
        from rigd.actors import _session
        from rigd.actors._to_head import PlacementGroupReady

        return _session.get_runtime().head_request(PlacementGroupReady(self.id))

    def wait(self, timeout_seconds: float = 30) -> bool:
        """Wait up to ``timeout_seconds`` for the bundles; True once they are reserved."""
        from rigd.actors import _session

        if isinstance(timeout_seconds, bool) or not isinstance(timeout_seconds, int | float):
            raise TypeError(f"timeout_seconds must be a number, got {timeout_seconds!r}")
        ref = self.ready()
        if not _session.get_runtime().wait(ref, max(0.0, float(timeout_seconds))):
            return False
        try:
            ref._result()
        except ValueError:
            return False
        return True


def new_group_id() -> bytes:
    """A fresh group id (16 random bytes, as Ray's)."""
    return os.urandom(16)


def check_bundles(bundles: object) -> list[dict[str, float]]:
    """Ray's bundle list checked, with every amount a float.

    Raises:
        ValueError: not a non-empty list of non-empty dicts of amounts >= 0,
            or a bundle whose amounts are all 0 (Ray's words).
    """
    if not isinstance(bundles, list | tuple) or not bundles:
        raise ValueError(
            f"The placement group `bundles` argument must be a non-empty list of dicts "
            f"such as [{{'CPU': 1}}], got {bundles!r}"
        )
    out: list[dict[str, float]] = []
    for bundle in bundles:
        if not isinstance(bundle, dict) or not bundle:
            raise ValueError(
                f"Bundles must be non-empty dicts of resource amounts such as {{'CPU': 1}}, "
                f"got {bundle!r}"
            )
        spec: dict[str, float] = {}
        for key, amount in bundle.items():
            if (
                not isinstance(key, str)
                or isinstance(amount, bool)
                or not isinstance(amount, int | float)
                or amount < 0
            ):
                raise ValueError(
                    f"Bundle {bundle!r}: each key must be a resource name and each amount a "
                    f"number >= 0, got {key!r}: {amount!r}"
                )
            spec[key] = float(amount)
        if all(v == 0 for v in spec.values()):
            raise ValueError(
                f"Bundles cannot be an empty dictionary or resources with only 0 values. "
                f"Bundles: {list(bundles)}"
            )
        out.append(spec)
    return out


def check_fits(
    who: str, group: PlacementGroup, index: int, num_cpus: float, num_gpus: float
) -> None:
    """Refuse an actor whose request fits no bundle of ``group`` (Ray's check and words).

    Raises:
        ValueError: ``index`` is not a bundle of the group, or the request
            fits no bundle (or not bundle ``index``).
    """
    if not -1 <= index < group.bundle_count:
        raise ValueError(
            f"placement_group_bundle_index {index} is out of range: the placement group has "
            f"{group.bundle_count} bundle(s); pass -1 (any) or 0..{group.bundle_count - 1}"
        )
    request: dict[str, float | int] = {}
    if num_cpus:
        request["CPU"] = num_cpus
    if num_gpus:
        request["GPU"] = num_gpus
    specs = group.bundle_specs if index == -1 else [group.bundle_specs[index]]
    for spec in specs:
        if all(spec.get(key, 0.0) >= amount for key, amount in request.items()):
            return
    where = "any bundles" if index == -1 else f"bundle {index}"
    raise ValueError(
        f"Cannot schedule {who} with the placement group because the resource request "
        f"{request} cannot fit into {where} for the placement group, {group.bundle_specs}."
    )


# -- Ray's ray.util functions --------------------------------------------------------


def placement_group(
    bundles: list[dict[str, float]],
    strategy: str = "PACK",
    name: str = "",
    lifetime: str | None = None,
    _soft_target_node_id: str | None = None,
    bundle_label_selector: Any = None,
) -> PlacementGroup:
    """Ray's ``ray.util.placement_group``: reserve ``bundles`` on this machine.

    Args:
        bundles: each bundle's resources (``CPU``, ``GPU``, ``memory``; other
            keys are custom resources, which this machine lacks: such a
            group stays pending).
        strategy: PACK, SPREAD, STRICT_PACK or STRICT_SPREAD (with more than
            one bundle, infeasible on one machine: the group stays pending).
        name: a name unique in this driver's namespace (``get_placement_group``).
        lifetime: None (removed when this driver exits) or ``"detached"``.

    Returns:
        The group's handle; ``ready()`` / ``wait()`` tell when it is reserved.
        Connected to a Ray cluster (``rigd.init(address="ray...")``), Ray's
        own group from ``ray.util.placement_group``.

    Raises:
        ValueError: bad bundles, strategy or lifetime; the name is taken.
        TypeError: ``name`` is not a string.
    """
    from rigd.actors import _session
    from rigd.actors._to_head import CreatePlacementGroup

    backend = _session.ray_backend()
    if backend is not None:  # on a Ray cluster (rigd[cluster]): Ray's own group
        return backend.ray.util.placement_group(  # type: ignore[no-any-return]
            bundles, strategy=strategy, name=name, lifetime=lifetime
        )
    specs = check_bundles(bundles)
    if strategy not in STRATEGIES:
        raise ValueError(f"Invalid placement group strategy {strategy!r}; use one of {STRATEGIES}")
    if lifetime not in (None, "detached"):
        raise ValueError(
            f"Placement group `lifetime` argument must be either `None` or 'detached', "
            f"got {lifetime!r}"
        )
    if not isinstance(name, str):
        raise TypeError(f"The placement group `name` argument must be a string, got {name!r}")
    if _soft_target_node_id is not None or bundle_label_selector is not None:
        raise ValueError(
            "_soft_target_node_id and bundle_label_selector choose among a cluster's nodes; "
            "a rigd session is one machine: leave them out"
        )
    runtime = _session.get_runtime()
    group = PlacementGroup(new_group_id(), specs)
    runtime.head_call(
        CreatePlacementGroup(group, name, runtime.namespace, strategy, lifetime == "detached")
    )
    return group


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Ray's ``ray.util.remove_placement_group``: kill its actors, return its bundles.

    Raises:
        TypeError: not a ``PlacementGroup``.
    """
    from rigd.actors import _session
    from rigd.actors._to_head import RemovePlacementGroup

    backend = _session.ray_backend()
    if backend is not None:
        backend.ray.util.remove_placement_group(placement_group)
        return
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(f"expected a PlacementGroup, got {placement_group!r}")
    _session.get_runtime().head_call(RemovePlacementGroup(placement_group.id))


def get_placement_group(placement_group_name: str) -> PlacementGroup:
    """Ray's ``ray.util.get_placement_group``: the group named so in this namespace.

    Raises:
        ValueError: no such group (Ray's words).
    """
    from rigd.actors import _session
    from rigd.actors._to_head import PlacementGroupTable

    backend = _session.ray_backend()
    if backend is not None:
        return backend.ray.util.get_placement_group(placement_group_name)  # type: ignore[no-any-return]
    if not isinstance(placement_group_name, str) or not placement_group_name:
        raise ValueError(
            f"get_placement_group needs a group's name (a non-empty string), "
            f"got {placement_group_name!r}"
        )
    runtime = _session.get_runtime()
    rows = runtime.head_call(PlacementGroupTable(placement_group_name, runtime.namespace))
    if not rows:
        raise ValueError(
            f"Failed to look up placement group with name: {placement_group_name} "
            f"in namespace {runtime.namespace!r}"
        )
    group: PlacementGroup = rows[0][1]
    return group


def placement_group_table(placement_group: PlacementGroup | None = None) -> dict[str, Any]:
    """Ray's ``ray.util.placement_group_table``: one group's row, or every group's by id hex."""
    from rigd.actors import _session
    from rigd.actors._to_head import PlacementGroupTable

    backend = _session.ray_backend()
    if backend is not None:
        return backend.ray.util.placement_group_table(placement_group)  # type: ignore[no-any-return]
    rows = _session.get_runtime().head_call(PlacementGroupTable("", ""))
    table: dict[str, Any] = {row["placement_group_id"]: row for row, _ in rows}
    if placement_group is None:
        return table
    row: dict[str, Any] = table.get(placement_group.id.hex(), {})
    return row
