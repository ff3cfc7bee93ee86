"""A source's ``shape`` and ``dtype`` options, checked once for every source."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["frame_spec"]


def frame_spec(shape: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
    """``shape`` as a tuple of positive ints and ``dtype`` as a numpy dtype.

    Raises:
        ValueError: a shape that is not a list of positive sizes, or a dtype
            numpy does not know; the message gives an example.
    """
    try:
        sizes = tuple(int(n) for n in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be a list of sizes, e.g. [512, 512], got {shape!r}") from None
    if not sizes or any(n <= 0 for n in sizes):
        raise ValueError(f"shape must be positive sizes, got {list(sizes)}")
    try:
        return sizes, np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype {dtype!r} is not a numpy dtype (e.g. uint16)") from None
