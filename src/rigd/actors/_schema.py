"""What an actor class offers: its methods, its kind, its concurrency groups.

Computed once in the creating process from the class and its options, sent
with the actor's start message to the worker (which picks its executor from
it) and with every handle (which checks method names, their arguments and
concurrency groups at the call site).
"""

from __future__ import annotations

import inspect
import types
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
    "bound_method",
    "build_schema",
    "call_signature",
    "check_arguments",
    "parameter_names",
]

#: Method names a handle offers besides the class's public methods: a graceful
#: end, under rigd's name and Ray's.
BUILTIN_METHODS = ("__rigd_terminate__", "__ray_terminate__")
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
    #: The parameters (without ``self``), defaults and annotations stripped so
    #: that the schema always pickles; ``None`` where unknown (builtins).
    signature: inspect.Signature | None = None
    #: How many positional arguments a call may pass with no keyword
    #: arguments and skip ``signature.bind`` (a plain ``def m(self, a, b)``:
    #: 2); -1 when every call is bound. Binding costs ~2 us per call.
    fast_arity: int = -1
    num_returns: int | str = 1


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


def call_signature(
    fn: Callable[..., Any], drop_first: bool = False
) -> tuple[inspect.Signature | None, int]:
    """The signature a call of ``fn`` is checked against, and its fast arity.

    Defaults become ``...`` and annotations go: only their presence matters
    for checking, and a default need not pickle.
    """
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, -1
    params = list(signature.parameters.values())
    if (
        drop_first
        and params
        and params[0].kind
        in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        )
    ):
        params = params[1:]
    stripped = [
        p.replace(
            annotation=inspect.Parameter.empty,
            default=inspect.Parameter.empty if p.default is inspect.Parameter.empty else ...,
        )
        for p in params
    ]
    simple = all(
        p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD and p.default is inspect.Parameter.empty
        for p in stripped
    )
    return inspect.Signature(stripped), len(stripped) if simple else -1


def check_arguments(
    signature: inspect.Signature | None,
    fast_arity: int,
    label: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    """Refuse, at the call site, arguments ``label`` cannot take (as Ray does).

    Raises:
        TypeError: the arguments do not match the signature.
    """
    if (not kwargs and len(args) == fast_arity) or signature is None:
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{label}() got arguments it cannot take: {exc}") from None


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
        static = isinstance(inspect.getattr_static(cls, name, None), staticmethod)
        signature, fast_arity = call_signature(
            member, drop_first=not static and not inspect.ismethod(member)
        )
        num_returns = 1 if marked is None or marked.num_returns is None else marked.num_returns
        methods[name] = MethodSpec(
            signature=signature,
            fast_arity=fast_arity,
            num_returns=num_returns,
            params=parameter_names(member),
            group=group,
            is_coroutine=inspect.iscoroutinefunction(function)
            or inspect.isasyncgenfunction(function),
            is_generator=inspect.isgeneratorfunction(function)
            or inspect.isasyncgenfunction(function)
            or num_returns == "streaming",
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


def bound_method(instance: Any, name: str) -> Any:
    """The class's method ``name`` bound to ``instance``, as Ray finds it.

    Looked up on the class, so an instance attribute of the same name (set
    in ``__init__``, say) does not hide the method from its callers.
    """
    member = inspect.getattr_static(type(instance), name, None)
    if inspect.isfunction(member):
        return types.MethodType(member, instance)
    return getattr(instance, name)
