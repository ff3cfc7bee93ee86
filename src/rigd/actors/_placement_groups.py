"""The head's placement groups: bundles of CPUs and GPUs reserved ahead.

Ray's placement groups (``ray.util.placement_group``) on one machine. A
group's bundles are reserved from the session's pool (``Resources``) all
at once, or not at all: a group that does not fit now stays PENDING, as in
Ray, and is reserved as soon as actors and tasks free enough. An actor
placed in a group draws its CPUs and GPUs from its bundle, not from the
pool; removing the group kills its actors and returns the bundles.

Strategies on one node (as Ray's on a one-node cluster): PACK, SPREAD and
STRICT_PACK place every bundle here; STRICT_SPREAD with more than one
bundle is infeasible (each bundle needs a node of its own) and stays
PENDING until removed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rigd.actors._bundles import bundle_cpus_gpus
from rigd.actors._head_records import ActorRecord, Peer

if TYPE_CHECKING:
    from rigd.actors._placement_group import PlacementGroup
from rigd.actors._resources import Resources
from rigd.gpu import GpuInfo

__all__ = ["GroupRecord", "PlacementGroups"]

#: ``reply(peer, req_id, payload, ok)``: answer a request.
Reply = Callable[[Peer, int, Any, bool], None]

_EPSILON = 1e-9


@dataclass(eq=False)
class GroupRecord:
    """One placement group as the head knows it."""

    group: PlacementGroup
    name: str
    namespace: str
    strategy: str
    detached: bool
    creator: Peer | None
    state: str = "PENDING"
    gpus: list[tuple[GpuInfo, ...]] = field(default_factory=list)
    used_cpus: list[float] = field(default_factory=list)
    used_gpus: list[float] = field(default_factory=list)
    actors: dict[str, int] = field(default_factory=dict)
    ready_waiters: list[tuple[Peer, int]] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        """The group as Ray's ``placement_group_table`` shows it."""
        return {
            "placement_group_id": self.group.id.hex(),
            "name": self.name,
            "namespace": self.namespace,
            "bundles": dict(enumerate(self.group.bundle_specs)),
            "strategy": self.strategy,
            "state": self.state,
            "is_detached": self.detached,
        }


class PlacementGroups:
    """Every placement group of the session, and what their bundles hold.

    Args:
        resources: the session's pool the bundles are reserved from.
        reply: answers a request.
        kill_actor: ends an actor for good, without restart (``actor_id``).
        on_freed: called when a removed group returns its bundles.
    """

    def __init__(
        self,
        resources: Resources,
        reply: Reply,
        kill_actor: Callable[[str], None],
        on_freed: Callable[[], None],
    ) -> None:
        self._resources = resources
        self._reply = reply
        self._kill_actor = kill_actor
        self._on_freed = on_freed
        self._groups: dict[bytes, GroupRecord] = {}
        self._order = itertools.count()

    # -- requests ---------------------------------------------------------------

    def create(self, peer: Peer, req_id: int, message: Any) -> None:
        """Add a group (refused if its name is taken in its namespace); reserve it if it fits."""
        group: PlacementGroup = message.group
        if message.name and self._named(message.name, message.namespace) is not None:
            error = ValueError(
                f"Failed to create placement group {message.name!r}: the name is taken in "
                f"namespace {message.namespace!r}; remove that group first or choose another name"
            )
            self._reply(peer, req_id, error, False)
            return
        record = GroupRecord(
            group,
            message.name,
            message.namespace,
            message.strategy,
            message.detached,
            peer,
            used_cpus=[0.0] * len(group.bundle_specs),
            used_gpus=[0.0] * len(group.bundle_specs),
        )
        self._groups[group.id] = record
        self._reply(peer, req_id, None, True)
        self.reserve_pending()

    def ready(self, peer: Peer, req_id: int, group_id: bytes) -> None:
        """Answer with the group once its bundles are reserved (an error if it is removed)."""
        record = self._groups.get(group_id)
        if record is None:
            self._reply(peer, req_id, _removed(group_id), False)
        elif record.state == "CREATED":
            self._reply(peer, req_id, record.group, True)
        else:
            record.ready_waiters.append((peer, req_id))

    def remove(self, peer: Peer, req_id: int, group_id: bytes) -> None:
        """Remove a group: its actors are killed, its bundles return to the pool."""
        record = self._groups.pop(group_id, None)
        if record is not None:
            self._drop(record)
        self._reply(peer, req_id, None, True)

    def table(self, peer: Peer, req_id: int, message: Any) -> None:
        """Answer with the rows of the groups (one named group when ``name`` is given)."""
        if message.name:
            found = self._named(message.name, message.namespace)
            rows = [] if found is None else [(found.row(), found.group)]
        else:
            rows = [(r.row(), r.group) for r in self._groups.values()]
        self._reply(peer, req_id, rows, True)

    # -- the pool -------------------------------------------------------------------

    def reserve_pending(self) -> bool:
        """Reserve, in creation order, every pending group that fits now; True if any was."""
        reserved = False
        for record in list(self._groups.values()):
            if record.state == "PENDING" and self._reserve(record):
                record.state = "CREATED"
                reserved = True
                for waiter, req_id in record.ready_waiters:
                    self._reply(waiter, req_id, record.group, True)
                record.ready_waiters.clear()
        return reserved

    def _reserve(self, record: GroupRecord) -> bool:
        specs = record.group.bundle_specs
        if record.strategy == "STRICT_SPREAD" and len(specs) > 1:
            return False  # one bundle per node: infeasible on one machine
        needs = [bundle_cpus_gpus(spec) for spec in specs]
        if any(n is None for n in needs):
            return False  # a custom resource this machine does not have
        cpus = sum(n[0] for n in needs if n is not None)
        if cpus > self._resources.cpus_free + _EPSILON:
            return False
        taken: list[tuple[GpuInfo, ...]] = []
        for need in needs:
            assert need is not None
            gpus = self._resources.allocate_gpus(need[1])
            if gpus is None:
                for (_, amount), got in zip(needs, taken, strict=False):  # type: ignore[misc]
                    self._resources.release_gpus(got, amount)
                return False
            taken.append(gpus)
        self._resources.take_cpus(cpus)
        record.gpus = taken
        return True

    def _drop(self, record: GroupRecord) -> None:
        for waiter, req_id in record.ready_waiters:
            self._reply(waiter, req_id, _removed(record.group.id), False)
        record.ready_waiters.clear()
        for actor_id in list(record.actors):
            self._kill_actor(actor_id)
        record.actors.clear()
        if record.state == "CREATED":
            needs = [bundle_cpus_gpus(spec) or (0.0, 0.0) for spec in record.group.bundle_specs]
            self._resources.give_cpus(sum(n[0] for n in needs))
            for (_, amount), gpus in zip(needs, record.gpus, strict=True):
                self._resources.release_gpus(gpus, amount)
            record.gpus = []
        record.state = "REMOVED"
        self._on_freed()

    def peer_lost(self, peer: Peer) -> None:
        """A driver is gone: the groups it created are removed, unless detached."""
        for group_id, record in list(self._groups.items()):
            if record.creator is peer and not record.detached:
                del self._groups[group_id]
                self._drop(record)

    # -- actors in a group -------------------------------------------------------

    def take(self, actor: ActorRecord, group_id: bytes, index: int) -> bool | str:
        """Draw the actor's CPUs and GPUs from its bundle.

        Returns:
            True when drawn; False while the group is pending or the bundle
            is full (the actor waits, as in Ray); a reason in words when the
            group is gone.
        """
        record = self._groups.get(group_id)
        if record is None:
            return f"its placement group {group_id.hex()} was removed"
        if record.state != "CREATED":
            return False
        cpus, gpus = actor.cpus, float(actor.options.num_gpus)
        indexes = [index] if index >= 0 else range(len(record.group.bundle_specs))
        for i in indexes:
            spec_cpus, spec_gpus = bundle_cpus_gpus(record.group.bundle_specs[i]) or (0.0, 0.0)
            if (
                record.used_cpus[i] + cpus <= spec_cpus + _EPSILON
                and record.used_gpus[i] + gpus <= spec_gpus + _EPSILON
            ):
                record.used_cpus[i] += cpus
                record.used_gpus[i] += gpus
                record.actors[actor.actor_id] = i
                if gpus:
                    actor.gpus = record.gpus[i]  # the bundle's GPUs, in CUDA_VISIBLE_DEVICES
                return True
        return False

    def give(self, actor: ActorRecord) -> None:
        """The actor ended: its share of its bundle is free again."""
        for record in self._groups.values():
            index = record.actors.pop(actor.actor_id, None)
            if index is not None:
                record.used_cpus[index] -= actor.cpus
                record.used_gpus[index] -= float(actor.options.num_gpus)
                return

    def _named(self, name: str, namespace: str) -> GroupRecord | None:
        for record in self._groups.values():
            if record.name == name and record.namespace == namespace:
                return record
        return None


def _removed(group_id: bytes) -> ValueError:
    return ValueError(f"placement group {group_id.hex()} was removed")
