"""rigd: a GPU-aware acquisition service for lab rigs.

The public API is Ray's actor API (``import rigd`` in place of ``import ray``)::

    import rigd

    @rigd.remote
    class Counter:
        def __init__(self):
            self.value = 0

        def increment(self):
            self.value += 1
            return self.value

    counter = Counter.remote()
    print(rigd.get(counter.increment.remote()))  # 1
"""

import importlib
from typing import Any

from rigd import actor, exceptions, job_config, state, util
from rigd._version import __version__
from rigd.actors import (
    Actor,
    ObjectRef,
    ObjectRefGenerator,
    available_resources,
    cancel,
    cluster_resources,
    get,
    get_actor,
    get_gpu_ids,
    get_runtime_context,
    init,
    is_initialized,
    kill,
    method,
    nodes,
    put,
    remote,
    shutdown,
    wait,
)

__all__ = [
    "Actor",
    "ObjectRef",
    "ObjectRefGenerator",
    "__version__",
    "actor",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exceptions",
    "get",
    "get_actor",
    "get_gpu_ids",
    "get_runtime_context",
    "init",
    "is_initialized",
    "job_config",
    "kill",
    "method",
    "nodes",
    "put",
    "remote",
    "shutdown",
    "state",
    "store",
    "util",
    "wait",
]


def __getattr__(name: str) -> Any:
    # ``rigd.store`` on first use: it brings numpy and the rings, which an
    # actor's worker process (it imports rigd) must not pay for at start.
    if name == "store":
        return importlib.import_module("rigd.store")
    raise AttributeError(f"module 'rigd' has no attribute {name!r}")
