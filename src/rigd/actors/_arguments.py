"""Arguments of calls, tasks and constructors: serialized at the call site,
and when one cannot be, an error naming the first argument that fails.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import cloudpickle

from rigd.actors._schema import parameter_names
from rigd.actors._wire import dumps

__all__ = ["check_serializable", "probing", "serialize_args", "unserializable"]


#: Set while arguments are serialized only to check them (the bytes are
#: dropped): a handle pickled then lends nothing, or its actor would wait
#: for a borrower that never comes and outlive its last handle.
probing = threading.local()


def check_serializable(
    fn: Callable[..., Any],
    label: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    shm_prefix: str,
) -> None:
    """Raise ``TypeError`` naming the argument that cannot be serialized, if one cannot."""
    probing.active = True
    try:
        serialize_args(fn, label, args, kwargs, shm_prefix)
    finally:
        probing.active = False


def serialize_args(
    fn: Callable[..., Any],
    label: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    shm_prefix: str,
) -> bytes:
    """``(args, kwargs)`` serialized; ``TypeError`` naming the argument that cannot be."""
    try:
        return dumps((args, kwargs), shm_prefix)
    except TypeError as exc:
        raise TypeError(unserializable(fn, label, args, kwargs, exc)) from exc


def unserializable(
    fn: Callable[..., Any] | tuple[str, ...],
    label: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    exc: BaseException,
) -> str:
    """Name the first argument that cannot be pickled."""
    params = fn if isinstance(fn, tuple) else parameter_names(fn)
    probing.active = True
    try:
        return _first_unserializable(params, label, args, kwargs, exc)
    finally:
        probing.active = False


def _first_unserializable(
    params: tuple[str, ...],
    label: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    exc: BaseException,
) -> str:
    for index, value in enumerate(args):
        try:
            cloudpickle.dumps(value)
        except Exception as err:  # noqa: BLE001 - probing which argument fails
            name = params[index] if index < len(params) else f"#{index}"
            return (
                f"argument {name!r} of {label}() cannot be serialized: {err}; pass "
                "something picklable (plain data, arrays), or create it inside the actor"
            )
    for key, value in kwargs.items():
        try:
            cloudpickle.dumps(value)
        except Exception as err:  # noqa: BLE001 - probing which argument fails
            return (
                f"argument {key!r} of {label}() cannot be serialized: {err}; pass "
                "something picklable (plain data, arrays), or create it inside the actor"
            )
    return f"the arguments of {label}() cannot be serialized: {exc}"
