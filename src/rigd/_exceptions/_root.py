"""The root of rigd's error tree (drawn in ``rigd._exceptions``)."""

from __future__ import annotations

__all__ = ["RigdError"]


class RigdError(Exception):
    """Root of every error rigd raises on its own account."""
