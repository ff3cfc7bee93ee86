"""The daemon's client as the command line uses it: an error exits 1 with its message."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rigd.service._client import ApiError, Client

__all__ = ["client_call"]


def client_call(command: str, args: argparse.Namespace, method: str, *call: Any) -> Any:
    """``Client.<method>(*call)`` against the daemon; an error exits 1 with its message."""
    try:
        return getattr(Client.find(args.url, args.token_file), method)(*call)
    except ApiError as exc:
        print(f"rigd {command}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
