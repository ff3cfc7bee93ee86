"""Typed, validated options for actors, actor methods and tasks.

Options are frozen dataclasses, never ``**kwargs`` dicts read back later:
every bad value is rejected where the user wrote it, at decoration or
``.options()`` time, never inside a worker.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from rigd.actors._returns import check_num_returns
from rigd.actors._scheduling import PlacementGroupSchedulingStrategy, check_scheduling_strategy

__all__ = ["ActorOptions", "TaskOptions", "check_name"]

Lifetime = Literal["detached", "non_detached"] | None


def _check_resource(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


def _check_count(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")


def check_name(what: str, value: object) -> None:
    """Refuse a name or namespace as Ray does: ``TypeError`` if not a string,
    ``ValueError`` if empty.
    """
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {type(value).__name__}: {value!r}")
    if not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def _replace_checked(options: Any, kind: str, changes: Mapping[str, object]) -> Any:
    valid = sorted(f.name for f in dataclasses.fields(options))
    unknown = sorted(set(changes) - set(valid))
    if unknown:
        raise TypeError(
            f"unknown {kind} option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; valid options are: {', '.join(valid)}"
        )
    return dataclasses.replace(options, **changes)


@dataclass(frozen=True, slots=True)
class ActorOptions:
    """How an actor is placed, named and kept alive.

    Args:
        num_cpus: CPUs reserved for the actor's lifetime. ``None`` (the
            default, as in Ray) reserves none, so any number of idle actors
            fit on a small machine.
        num_gpus: GPUs reserved (fractions share a GPU).
        resources: custom resources, name to amount.
        max_restarts: restarts after an unexpected death (-1: unlimited).
        max_task_retries: resends of calls in flight when the process died.
        max_concurrency: calls run at once (the default group's size).
        concurrency_groups: group name to its size.
        enable_task_events: record submitted/started/finished events.
        name: a name unique in its namespace, for ``rigd.get_actor``.
        namespace: the namespace of ``name``; the driver's by default.
        get_if_exists: with ``name``, return the existing actor if any.
        lifetime: ``"detached"`` to outlive the creator and its handles.
        scheduling_strategy: one of Ray's; on one machine each means this
            machine (see ``rigd.util.scheduling_strategies``).
        placement_group: Ray's older spelling of
            ``PlacementGroupSchedulingStrategy(placement_group, placement_group_bundle_index)``.
        placement_group_bundle_index: the bundle, with ``placement_group`` (-1: any).
    """

    num_cpus: float | None = None
    num_gpus: float = 0
    resources: Mapping[str, float] = field(default_factory=dict)
    max_restarts: int = 0
    max_task_retries: int = 0
    max_concurrency: int | None = None
    concurrency_groups: Mapping[str, int] = field(default_factory=dict)
    enable_task_events: bool = True
    name: str | None = None
    namespace: str | None = None
    get_if_exists: bool = False
    lifetime: Lifetime = None
    scheduling_strategy: Any = None
    placement_group: Any = None
    placement_group_bundle_index: int = -1

    def __post_init__(self) -> None:
        if self.placement_group not in (None, "default"):
            if self.scheduling_strategy is not None:
                raise ValueError(
                    "placement_group= and scheduling_strategy= both name a placement; pass "
                    "only scheduling_strategy=PlacementGroupSchedulingStrategy(...)"
                )
            strategy = PlacementGroupSchedulingStrategy(
                self.placement_group, self.placement_group_bundle_index
            )
            object.__setattr__(self, "scheduling_strategy", strategy)
            object.__setattr__(self, "placement_group", None)
        check_scheduling_strategy(self.scheduling_strategy)
        if self.num_cpus is not None:
            _check_resource("num_cpus", self.num_cpus)
        _check_resource("num_gpus", self.num_gpus)
        if self.num_gpus > 1 and self.num_gpus != int(self.num_gpus):
            raise ValueError(f"num_gpus above 1 must be a whole number, got {self.num_gpus!r}")
        for key, amount in self.resources.items():
            _check_resource(f"resources[{key!r}]", amount)
        _check_count("max_restarts", self.max_restarts, -1)
        _check_count("max_task_retries", self.max_task_retries, -1)
        if self.max_concurrency is not None:
            _check_count("max_concurrency", self.max_concurrency, 1)
        for group, size in self.concurrency_groups.items():
            if not isinstance(group, str) or not group:
                raise TypeError(f"concurrency group names must be strings, got {group!r}")
            _check_count(f"concurrency_groups[{group!r}]", size, 1)
        if self.name is not None:
            check_name("name", self.name)
        if self.namespace is not None:
            check_name("namespace", self.namespace)
        if self.get_if_exists and self.name is None:
            raise ValueError("get_if_exists=True needs a name; pass name='...' as well")
        spelled: object = self.lifetime
        if spelled == "non-detached":
            # Ray 1.x's spelling of "non_detached", still found in Ray code.
            object.__setattr__(self, "lifetime", "non_detached")
        if self.lifetime not in (None, "detached", "non_detached"):
            raise ValueError(
                f"lifetime must be 'detached', 'non_detached' or None, got {self.lifetime!r}"
            )

    @property
    def detached(self) -> bool:
        """Whether the actor outlives its creator and its handles."""
        return self.lifetime == "detached"

    def replace(self, **changes: object) -> Self:
        """Return a copy with ``changes``; unknown names raise ``TypeError``."""
        return _replace_checked(self, "actor", changes)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class TaskOptions:
    """How a remote function's calls are placed and retried.

    Args:
        num_cpus: CPUs each call holds while it runs (1 by default, as in Ray).
        num_gpus: GPUs each call holds while it runs.
        resources: custom resources, name to amount.
        max_retries: resends when the worker running the call dies (3, as
            in Ray; -1: unlimited).
        enable_task_events: record submitted/started/finished events.
        name: a name for the task in events and errors.
        num_returns: how many refs a call returns (an int >= 0; the function
            returns a sequence of that many values), ``"streaming"`` (as in
            Ray; generator functions stream anyway) or ``"dynamic"``.
        retry_exceptions: also retry (up to ``max_retries``) when the
            function raises: ``True`` for any exception, or a list of
            exception classes.
        scheduling_strategy: one of Ray's; on one machine each means this
            machine (see ``rigd.util.scheduling_strategies``).
    """

    num_cpus: float = 1
    num_gpus: float = 0
    resources: Mapping[str, float] = field(default_factory=dict)
    max_retries: int = 3
    enable_task_events: bool = True
    name: str | None = None
    num_returns: int | str = 1
    scheduling_strategy: Any = None
    retry_exceptions: bool | tuple[type[BaseException], ...] = False

    def __post_init__(self) -> None:
        check_scheduling_strategy(self.scheduling_strategy)
        retry = self.retry_exceptions
        if isinstance(retry, list):
            object.__setattr__(self, "retry_exceptions", retry := tuple(retry))
        if not isinstance(retry, bool) and not (
            isinstance(retry, tuple)
            and all(isinstance(c, type) and issubclass(c, BaseException) for c in retry)
        ):
            raise TypeError(
                f"retry_exceptions must be a bool or a list of exception classes, got {retry!r}"
            )
        _check_resource("num_cpus", self.num_cpus)
        _check_resource("num_gpus", self.num_gpus)
        for key, amount in self.resources.items():
            _check_resource(f"resources[{key!r}]", amount)
        _check_count("max_retries", self.max_retries, -1)
        if self.name is not None:
            check_name("name", self.name)
        check_num_returns(self.num_returns)

    def replace(self, **changes: object) -> Self:
        """Return a copy with ``changes``; unknown names raise ``TypeError``."""
        if "concurrency_groups" in changes or "concurrency_group" in changes:
            raise TypeError("concurrency groups apply to actors, not to remote functions")
        return _replace_checked(self, "task", changes)  # type: ignore[no-any-return]
