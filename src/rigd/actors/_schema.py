"""What an actor class offers: its methods, its kind, its concurrency groups.

Computed once in the creating process from the class and its options, sent
with the actor's start message to the worker (which picks its executor from
it) and with every handle (which checks method names, their arguments and
concurrency groups at the call site).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from rigd.actors._options import ActorOptions

__all__ = [
    "BUILTIN_METHODS",
    "ActorKind",
    "ActorSchema",
    "MethodSpec",
    "build_schema",
    "parameter_names",
]

#: Method names a handle offers besides the class's public methods.
BUILTIN_METHODS = ("__rigd_terminate__",)
#: Ray's default size of an async actor's default group.
ASYNC_DEFAULT_CONCURRENCY = 1000


class ActorKind(Enum):
    """How an actor runs its calls."""

    #: One at a time, in the order each submitter sent them, on the main thread.
    SERIAL = "serial"
    #: On a pool of threads per concurrency group; no order promised.
    THREADED = "threaded"
    #: As coroutines on one event loop, bounded per group; no order promised.
    ASYNC = "async"


@dataclass(frozen=True, slots=True)
class MethodSpec:
    """One method as the caller and the worker need to know it."""

    params: tuple[str, ...]
    group: str | None = None
    is_coroutine: bool = False
    is_generator: bool = False
    enable_task_events: bool = True


@dataclass(frozen=True, slots=True)
class ActorSchema:
    """An actor class's methods, kind and concurrency groups."""

    methods: Mapping[str, MethodSpec]
    kind: ActorKind
    groups: Mapping[str, int]
    default_group_size: int
    enable_task_events: bool = True

    def group_of(self, method: str, override: str | None) -> str | None:
        """The group a call runs in: the override, the method's, or the default (None)."""
        if override is not None:
            return override
        spec = self.methods.get(method)
        return spec.group if spec is not None else None


def parameter_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The parameter names of a method, without ``self`` (for error messages)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return ()
    return tuple(p for p in params if p != "self")


def build_schema(
    cls: type,
    options: ActorOptions,
    method_options: Callable[[Callable[..., Any]], Any],
) -> ActorSchema:
    """Describe ``cls`` run with ``options``.

    Args:
        cls: the actor class.
        options: its options (max_concurrency, concurrency_groups).
        method_options: returns the ``@rigd.method`` options of a function, or None.

    Raises:
        ValueError: a method names a concurrency group the class does not declare.
    """
    methods: dict[str, MethodSpec] = {}
    for name, member in inspect.getmembers(cls):
        # Private names stay private, but for rigd's own hooks and controls
        # (``__rigd_shutdown__``, the pipeline actor's ``__rigd_run__``, ...).
        rigd_hook = name.startswith("__rigd_") and name.endswith("__")
        if not callable(member) or (name.startswith("_") and not rigd_hook):
            continue
        function = inspect.unwrap(member)
        marked = method_options(function)
        group = marked.concurrency_group if marked is not None else None
        if group is not None and group not in options.concurrency_groups:
            raise ValueError(
                f"method {cls.__name__}.{name} uses concurrency group {group!r}, which "
                f"{cls.__name__} does not declare; declare it with "
                f"@rigd.remote(concurrency_groups={{{group!r}: 1}})"
            )
        methods[name] = MethodSpec(
            params=parameter_names(member),
            group=group,
            is_coroutine=inspect.iscoroutinefunction(function)
            or inspect.isasyncgenfunction(function),
            is_generator=inspect.isgeneratorfunction(function)
            or inspect.isasyncgenfunction(function)
            or (marked is not None and marked.num_returns == "streaming"),
            enable_task_events=marked.enable_task_events if marked is not None else True,
        )
    for name in BUILTIN_METHODS:
        methods[name] = MethodSpec(params=())
    if any(spec.is_coroutine for spec in methods.values()):
        kind = ActorKind.ASYNC
    elif (options.max_concurrency or 1) > 1 or options.concurrency_groups:
        kind = ActorKind.THREADED
    else:
        kind = ActorKind.SERIAL
    default = options.max_concurrency or (
        ASYNC_DEFAULT_CONCURRENCY if kind is ActorKind.ASYNC else 1
    )
    return ActorSchema(
        methods, kind, dict(options.concurrency_groups), default, options.enable_task_events
    )
