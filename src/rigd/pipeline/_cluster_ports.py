"""The tcp ports of a cluster run's bridges: ephemeral, or from a configured range.

A bridge's sender binds a port on its node and its receiver, on another node,
connects to it, so the port is chosen before either starts: the sending
node's supervisor picks free ones there (``free_ports``), and the split of the
pipeline (``split_pipeline``) writes them into both ends' options.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

__all__ = ["bridges_from", "check_range", "free_ports"]


def bridges_from(parts: Mapping[str, dict[str, Any]]) -> dict[str, int]:
    """How many bridges each node's part sends (the ports it needs), by node name."""
    return {
        node: sum(a.get("class") == "rigd.pipeline.BridgeSender" for a in part["actors"])
        for node, part in parts.items()
    }


def free_ports(count: int, port_range: tuple[int, int] | None = None) -> list[int]:
    """``count`` tcp ports free on this machine now: ephemeral ones (the system
    chooses), or the first free ones in ``port_range`` (both ends included).

    All are held open together while chosen, so they are distinct; they are
    free again when this returns, for the bridges to bind at once.

    Raises:
        ValueError: ``port_range`` has fewer than ``count`` free ports.
    """
    held: list[socket.socket] = []
    try:
        candidates = [0] * count if port_range is None else range(port_range[0], port_range[1] + 1)
        for port in candidates:
            if len(held) == count:
                break
            s = socket.socket()
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                s.close()
                continue
            held.append(s)
        if len(held) < count:
            assert port_range is not None
            ports = "1 free tcp port" if count == 1 else f"{count} free tcp ports"
            free = f"{len(held)} is" if len(held) == 1 else f"{len(held)} are"
            raise ValueError(
                f"the bridges need {ports} in {port_range[0]}-{port_range[1]} on "
                f"{socket.gethostname()}, and {free} free; widen the range (--bridge-ports, "
                "ClusterPipeline port_range)"
            )
        return [int(s.getsockname()[1]) for s in held]
    finally:
        for s in held:
            s.close()


def check_range(port_range: Any) -> tuple[int, int] | None:
    """``port_range`` checked: ``None``, or ``(first, last)`` tcp ports.

    Raises:
        ValueError: anything else, with what is expected.
    """
    if port_range is None:
        return None
    if (
        not isinstance(port_range, (tuple, list))
        or len(port_range) != 2
        or not all(isinstance(p, int) and not isinstance(p, bool) for p in port_range)
        or not 1 <= port_range[0] <= port_range[1] <= 65535
    ):
        raise ValueError(
            f"port_range must be (first, last) tcp ports, 1 <= first <= last <= 65535, "
            f"got {port_range!r}"
        )
    return int(port_range[0]), int(port_range[1])
