"""Ray's ``cluster_resources()`` and ``available_resources()`` on one machine.

A rigd session is one node: its resources are the CPUs and GPUs actors and
tasks may reserve (``rigd.init(num_cpus=..., num_gpus=...)``), as the head
accounts them. On a Ray cluster (``rigd.init(address="ray...")``) both are
Ray's own.
"""

from __future__ import annotations

from rigd.actors import _session
from rigd.actors._to_head import ResourcesNow

__all__ = ["available_resources", "cluster_resources"]


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
