"""Which format a parsed pipeline file is: rigd's, or improv's config file."""

from __future__ import annotations

from typing import Any

__all__ = ["is_improv"]


def is_improv(data: dict[str, Any]) -> bool:
    """Whether a parsed config file is improv's format: ``actors`` is a mapping
    (rigd's is a list)."""
    return isinstance(data.get("actors"), dict)
