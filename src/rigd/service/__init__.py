"""The composition root: the ``rigd`` command (and, later, the daemon and REST API)."""

from rigd.service._cli import main

__all__ = ["main"]
