"""Ray's ``cluster_resources()``, ``available_resources()`` and ``nodes()`` on one machine.

A rigd session is one node: its resources are the CPUs and GPUs actors and
tasks may reserve (``rigd.init(num_cpus=..., num_gpus=...)``), as the head
accounts them. On a Ray cluster (``rigd.init(address="ray...")``) both are
Ray's own.
"""

from __future__ import annotations

import socket
from typing import Any

from rigd.actors import _session
from rigd.actors._runtime_context import get_runtime_context
from rigd.actors._to_head import ResourcesNow

__all__ = ["available_resources", "cluster_resources", "nodes"]


def cluster_resources() -> dict[str, float]:
    """The session's resources: ``{"CPU": n, "GPU": m}`` (``GPU`` only when it has GPUs).

    Values are counts (floats, as Ray gives them): CPUs the session may
    reserve, and GPUs (fractions add up per GPU). Starts a session if none
    is running, as Ray does.

    Raises:
        RigdError: the head did not answer within 60 s.
    """
    ray = _session.ray_backend()
    if ray is not None:
        return ray.cluster_resources()  # type: ignore[no-any-return]
    total, _ = _session.get_runtime().head_call(ResourcesNow())
    return dict(total)


def available_resources() -> dict[str, float]:
    """What of ``cluster_resources()`` is not reserved now (same keys and units).

    A resource with nothing free is left out, as Ray leaves it out. An
    actor holds its ``num_cpus``/``num_gpus`` while it lives; a task while
    it runs (not while it waits in ``rigd.get``, which lends its CPU).

    Raises:
        RigdError: the head did not answer within 60 s.
    """
    ray = _session.ray_backend()
    if ray is not None:
        return ray.available_resources()  # type: ignore[no-any-return]
    _, free = _session.get_runtime().head_call(ResourcesNow())
    return {key: value for key, value in free.items() if value > 0}


def nodes() -> list[dict[str, Any]]:
    """The session's nodes, as Ray's ``ray.nodes()`` lists them: here, this machine.

    Each node is a dict with Ray's keys: ``NodeID`` (the id
    ``get_runtime_context().get_node_id()`` gives), ``Alive`` and ``alive``
    (True), ``NodeManagerAddress`` (``127.0.0.1``: a session is reached on
    this machine only), ``NodeManagerHostname`` and ``NodeName`` (the host's
    name), ``Resources`` (``cluster_resources()``) and ``Labels`` (empty).
    Ray's ports and socket names are not there: a rigd session has no
    raylet. On a Ray cluster, Ray's own list.

    Raises:
        RigdError: the head did not answer within 60 s.
    """
    ray = _session.ray_backend()
    if ray is not None:
        return ray.nodes()  # type: ignore[no-any-return]
    host = socket.gethostname()
    return [
        {
            "NodeID": get_runtime_context().get_node_id(),
            "Alive": True,
            "alive": True,
            "NodeManagerAddress": "127.0.0.1",
            "NodeManagerHostname": host,
            "NodeName": host,
            "Resources": cluster_resources(),
            "Labels": {},
        }
    ]
