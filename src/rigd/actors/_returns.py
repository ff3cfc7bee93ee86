"""``num_returns``: one call, several refs (Ray's multiple returns).

A method or task declared with ``num_returns=n`` returns a sequence of ``n``
values in one reply; the caller gets ``n`` refs, each filled from it when
the reply comes. ``num_returns=0`` gives ``None`` (the call still runs).
``"dynamic"`` gives one ref whose value is the ``ObjectRefGenerator`` of the
items, once the method has produced them all (Ray's dynamic generators).
"""

from __future__ import annotations

from typing import Any

from rigd.actors._generator import ObjectRefGenerator
from rigd.actors._ref import ObjectRef

__all__ = ["check_num_returns", "split_returns"]


def check_num_returns(value: object) -> None:
    """Refuse a ``num_returns`` Ray would refuse.

    Raises:
        TypeError: not an int or one of the strings.
        ValueError: a negative int.
    """
    if isinstance(value, str):
        if value not in ("streaming", "dynamic"):
            raise ValueError(
                f"num_returns must be an int >= 0, 'streaming' or 'dynamic', got {value!r}"
            )
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"num_returns must be an int >= 0, 'streaming' or 'dynamic', got {value!r}")
    if value < 0:
        raise ValueError(f"num_returns must be >= 0, got {value!r}")


def split_returns(ref: Any, num_returns: int | str, label: str) -> Any:
    """Turn the ref of one call into what ``num_returns`` promises."""
    if num_returns == "dynamic":
        return _dynamic(ref)
    assert isinstance(num_returns, int)
    if num_returns == 0:
        return None
    parts: list[ObjectRef[Any]] = [ObjectRef() for _ in range(num_returns)]

    def cancel(force: bool = False) -> None:
        canceller = ref._canceller
        if canceller is not None and not ref._done:
            canceller(force)

    for part in parts:
        part._canceller = cancel

    def fill(whole: ObjectRef[Any]) -> None:
        if whole._error is not None:
            for part in parts:
                part._set_error(whole._error)
            return
        value = whole._value
        try:
            items = list(value)
        except TypeError:
            items = None
        if items is None or len(items) != num_returns:
            error = ValueError(
                f"{label} has num_returns={num_returns} but returned {value!r}; return a "
                f"sequence of {num_returns} values"
            )
            for part in parts:
                part._set_error(error)
            return
        for part, item in zip(parts, items, strict=True):
            part._set_value(item)

    ref._add_callback(fill)
    return parts


def _dynamic(stream: ObjectRefGenerator) -> ObjectRef[ObjectRefGenerator]:
    whole: ObjectRef[ObjectRefGenerator] = ObjectRef()

    def cancel(force: bool = False) -> None:
        if stream._canceller is not None:
            stream._canceller(force)

    whole._canceller = cancel
    stream._on_end(lambda: whole._set_value(stream))
    return whole
