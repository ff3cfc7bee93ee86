"""Per-method options: ``@rigd.method(...)`` (Ray's ``@ray.method``) and ``.options()``.

``method`` marks a function of an actor class with its ``MethodOptions``
(concurrency group, task events, ``num_returns``); ``ActorClass``
(``_handle``) reads the marks when the class is made remote
(``marked_options``), and ``ActorMethod.options`` checks per-call options
against ``CALL_OPTIONS``. ``RemoteMethod`` is how type checkers see a marked
method, after Ray's typing guide.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar, overload

from rigd.actors._ref import ObjectRef
from rigd.actors._returns import check_num_returns

__all__ = [
    "CALL_OPTIONS",
    "MethodOptions",
    "RemoteMethod",
    "check_method_options",
    "marked_options",
    "method",
    "ray_method_options",
]

R = TypeVar("R")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class MethodOptions:
    """Per-method options set with ``@rigd.method(...)``."""

    concurrency_group: str | None = None
    enable_task_events: bool = True
    #: ``None``: the method's own (``@rigd.method(num_returns=...)``), else 1.
    num_returns: int | str | None = None
    #: The call's name in task events (Ray's ``.options(name=...)``).
    name: str | None = None

    def __post_init__(self) -> None:
        if self.num_returns is not None:
            check_num_returns(self.num_returns)
        if self.name is not None and not isinstance(self.name, str):
            raise TypeError(f"name must be a string, got {self.name!r}")


CALL_OPTIONS = ("concurrency_group", "enable_task_events", "name", "num_returns")
_DECORATOR_OPTIONS = ("concurrency_group", "enable_task_events", "num_returns")


#: The options each function marked with ``@rigd.method`` was given.
_marked: weakref.WeakKeyDictionary[Callable[..., Any], MethodOptions] = weakref.WeakKeyDictionary()


class RemoteMethod(Protocol[P, R]):
    """How type checkers see a method marked ``@rigd.method`` (Ray's typing guide).

    Through an ``ActorProxy[T]``, ``handle.m.remote(...)`` is checked against
    ``m``'s parameters and returns ``ObjectRef`` of its return type.
    """

    def remote(self, *args: P.args, **kwargs: P.kwargs) -> ObjectRef[R]: ...

    def options(self, **options: Any) -> RemoteMethod[P, R]: ...

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...


@overload
def method(fn: Callable[Concatenate[Any, P], R], /) -> RemoteMethod[P, R]: ...
@overload
def method(
    *,
    concurrency_group: str | None = None,
    enable_task_events: bool = True,
    num_returns: int | str | None = None,
) -> Callable[[Callable[..., R]], Callable[..., R]]: ...


def method(fn: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Set options of one actor method, as ``@ray.method`` does.

    Usable bare (``@rigd.method``) or with options
    (``@rigd.method(concurrency_group="io")``).

    Raises:
        TypeError: an unknown option.
    """
    check_method_options(options, _DECORATOR_OPTIONS)
    method_options = MethodOptions(**options)

    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        _marked[f] = method_options
        return f

    return mark(fn) if fn is not None else mark


def check_method_options(options: dict[str, Any], valid: tuple[str, ...]) -> None:
    """Raise ``TypeError`` naming the unknown keys of ``options`` and the ``valid`` ones."""
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(
            f"unknown method option{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))}; valid options are: {', '.join(valid)}"
        )


def ray_method_options(cls: type) -> dict[str, dict[str, Any]]:
    """The ``@rigd.method`` options of ``cls``'s methods, as ``ray.method`` takes them."""
    out: dict[str, dict[str, Any]] = {}
    for name, value in inspect.getmembers(cls, inspect.isfunction):
        options = _marked.get(value)
        if options is None:
            continue
        ray_options: dict[str, Any] = {}
        if options.num_returns is not None:
            ray_options["num_returns"] = options.num_returns
        if options.concurrency_group is not None:
            ray_options["concurrency_group"] = options.concurrency_group
        if ray_options:
            out[name] = ray_options
    return out


def marked_options(fn: Callable[..., Any]) -> MethodOptions | None:
    """The options ``@rigd.method`` gave ``fn``; ``None`` if it is not marked."""
    return _marked.get(fn)
