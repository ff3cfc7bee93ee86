"""Refs passed as arguments: a call waits for its top-level refs, then
sends their values (Ray's rule; nested refs travel as refs).
"""

from __future__ import annotations

from typing import Any

from rigd.actors._ref import ObjectRef

__all__ = ["pending_refs", "placeholders", "placeholders_kw", "resolve_refs"]


def placeholders(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """``args`` with each top-level ref replaced by None (to check the rest pickles)."""
    return tuple(None if type(a) is ObjectRef else a for a in args)


def placeholders_kw(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with each top-level ref replaced by None."""
    return {k: None if type(v) is ObjectRef else v for k, v in kwargs.items()}


def pending_refs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[ObjectRef[Any]]:
    """The top-level refs of a call that are not done yet."""
    deps = [a for a in args if type(a) is ObjectRef and not a._done]
    if kwargs:
        deps += [v for v in kwargs.values() if type(v) is ObjectRef and not v._done]
    return deps


def resolve_refs(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], BaseException | None]:
    """Replace top-level refs by their values (all are done by now).

    Returns the new arguments, and the error of the first ref that failed
    (then the call fails with it, unsent), or None.
    """
    if any(type(a) is ObjectRef for a in args):
        resolved = []
        for a in args:
            if type(a) is ObjectRef:
                if a._error is not None:
                    return args, kwargs, a._error
                resolved.append(a._value)
            else:
                resolved.append(a)
        args = tuple(resolved)
    if kwargs and any(type(v) is ObjectRef for v in kwargs.values()):
        new_kwargs = {}
        for k, v in kwargs.items():
            if type(v) is ObjectRef:
                if v._error is not None:
                    return args, kwargs, v._error
                new_kwargs[k] = v._value
            else:
                new_kwargs[k] = v
        kwargs = new_kwargs
    return args, kwargs, None
