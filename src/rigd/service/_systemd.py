"""systemd's notify protocol (``Type=notify``), spoken directly: a datagram to
``$NOTIFY_SOCKET``. Without systemd (no socket) every call does nothing, so
``rigd serve`` runs the same from a terminal.

See sd_notify(3): ``READY=1`` once the daemon serves, ``STATUS=...`` for
``systemctl status``, ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC / 2``
while healthy, ``STOPPING=1`` when a stop begins.
"""

from __future__ import annotations

import os
import socket

__all__ = ["notify", "watchdog_interval"]


def notify(*fields: str) -> bool:
    """Send ``fields`` (e.g. ``"READY=1"``) to systemd; False without systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto("\n".join(fields).encode(), address)
    except OSError:
        return False
    return True


def watchdog_interval() -> float | None:
    """How often to send ``WATCHDOG=1`` (half systemd's timeout), or None if no watchdog
    is asked of this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 2e6
    except ValueError:
        return None
