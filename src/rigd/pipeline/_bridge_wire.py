"""The bridge's wire: its timing constants and the checks both ends share.

The protocol itself is described in ``rigd.pipeline._bridge``.
"""

from __future__ import annotations

import struct

__all__ = ["FRAME", "HEARTBEAT_S", "ID", "POLL_MS", "check_bind_address", "check_timeouts"]

HEARTBEAT_S = 0.25
POLL_MS = 50
ID = struct.Struct("<q")
#: A frame's first part: ``b"F"``, its id and its stamp (ns), little-endian.
FRAME = struct.Struct("<cqq")


def check_timeouts(window: int, peer_timeout: float) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an int >= 1 (frames in flight), got {window!r}")
    if isinstance(peer_timeout, bool) or not isinstance(peer_timeout, (int, float)):
        raise ValueError(f"peer_timeout must be a number of seconds, got {peer_timeout!r}")
    if peer_timeout <= 0:
        raise ValueError(f"peer_timeout must be positive, got {peer_timeout}")


def check_bind_address(address: object) -> None:
    """A sender's address, as ZMQ binds it: ``tcp://HOST:PORT`` (``*`` or an
    interface for HOST, ``*`` or 0 for a port the system chooses) or ``ipc://PATH``.

    Raises: ``ValueError`` naming the address and the forms taken."""
    text = address if isinstance(address, str) else ""
    scheme, _, rest = text.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme == "ipc" and rest and "\0" not in rest:
        return
    if scheme == "tcp" and host and (port == "*" or (port.isdigit() and int(port) < 65536)):
        return
    raise ValueError(
        f"address {address!r} is not one to bind; give tcp://HOST:PORT (e.g. "
        "tcp://0.0.0.0:5600; port * for one the system chooses) or ipc://PATH"
    )
