"""The API's bearer token: made at first start, readable by the service's user only."""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from pathlib import Path

__all__ = ["ensure_token", "read_token", "token_matches"]


def ensure_token(path: Path) -> str:
    """Return the token in ``path``, creating it (mode 0600) if it does not exist.

    Raises:
        PermissionError: the file exists and others than its owner may read
            it (as ssh refuses a private key others can read).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_token(path, check_mode=True)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(32) + "\n")
    return read_token(path)


def read_token(path: Path, *, check_mode: bool = False) -> str:
    """The token in ``path``.

    Raises:
        PermissionError: ``check_mode`` and the file is readable by others.
        ValueError: the file is empty.
    """
    if check_mode:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise PermissionError(
                f"token file {path} may be read by others (mode {stat.filemode(mode)}); "
                f"make it the service user's alone: chmod 600 {path}"
            )
    token = path.read_text().strip()
    if not token:
        raise ValueError(f"token file {path} is empty; delete it and a new token is made")
    return token


def token_matches(given: str, expected: str) -> bool:
    """Compare in constant time, so the answer's timing tells nothing of the token."""
    return hmac.compare_digest(given.encode(), expected.encode())
