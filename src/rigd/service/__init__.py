"""The composition root: the ``rigd`` command, the daemon and its REST API, and
``Client``, the REST API's client for scripts."""

from rigd.service._cli import main
from rigd.service._client import ApiError, Client

__all__ = ["ApiError", "Client", "main"]
