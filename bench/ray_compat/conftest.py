"""Single-machine fixtures under the names Ray's tests use (own code)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest
import ray

import rigd

#: Tests of behaviour modern Ray dropped or of a Ray-internal hook, by name
#: (with parameters, or every parametrization when the name has none).
#: Each "dropped" one was run against Ray 2.60, which fails it too.
NOT_RAYS_API = {
    "test_caching_actors": (
        "dropped by modern Ray: Ray 1.x refused actors before ray.init(); "
        "Ray 2 starts a session on first use, as rigd does"
    ),
    "test_actor_class_name": (
        "dropped by modern Ray: reads Ray 1.x's Redis keys (global_worker.redis_client)"
    ),
    "test_actor_method_metadata_cache": (
        "dropped by modern Ray: ray.actor.ActorClassMethodMetadata is gone from Ray 2.60"
    ),
    "test_caller_actor_restart": (
        "dropped by modern Ray: a call sent just after its actor's process was killed "
        "fails in Ray 2.60 (ActorUnavailableError, at most once), as in rigd"
    ),
    "test_decorated_method": (
        "Ray internals: __ray_invocation_decorator__ (a hook of Ray's own libraries)"
    ),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = NOT_RAYS_API.get(item.name.split("[", 1)[0])
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"out of scope: {reason}"))


def _start(**kwargs: Any) -> Iterator[dict[str, Any]]:
    kwargs.pop("include_dashboard", None)
    facts = rigd.init(
        **{k: v for k, v in kwargs.items() if k in ("num_cpus", "num_gpus", "namespace")}
    )
    yield facts
    rigd.shutdown()


@pytest.fixture
def shutdown_only() -> Iterator[None]:
    yield
    rigd.shutdown()


@pytest.fixture
def ray_start_regular(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    params = getattr(request, "param", {}) or {}
    if "_lru_evict" in params:
        pytest.skip("out of scope: object store: eviction (_lru_evict)")
    yield from _start(
        num_cpus=params.get("num_cpus", 1), **{k: v for k, v in params.items() if k != "num_cpus"}
    )


ray_start_regular_shared = ray_start_regular


@pytest.fixture
def ray_start_10_cpus() -> Iterator[dict[str, Any]]:
    yield from _start(num_cpus=10)


@pytest.fixture
def ray_start_shared_local_modes() -> Iterator[dict[str, Any]]:
    yield from _start(num_cpus=4)


class OneNodeCluster:
    """Ray's ``cluster_utils.Cluster`` on one machine: its head node, and no other.

    ``add_node`` once gives the node ``ray.init(address=cluster.address)``
    starts (its ``num_cpus``/``num_gpus``); a second node, or removing one,
    is a multi-node test: out of scope. A test that takes the fixture and
    never uses it runs as a single-machine test.
    """

    def __init__(self) -> None:
        self.address = ray.ONE_NODE
        self.nodes: list[dict[str, Any]] = []

    def add_node(self, **kwargs: Any) -> dict[str, Any]:
        if self.nodes or rigd.is_initialized():
            raise ray.OutOfScope("multi-node cluster: a second node (Cluster.add_node)")
        node = {k: v for k, v in kwargs.items() if k in ("num_cpus", "num_gpus")}
        ray._one_node.clear()
        ray._one_node.update(node)
        self.nodes.append(node)
        return node

    def wait_for_nodes(self, *args: Any, **kwargs: Any) -> None:
        return None

    def list_all_nodes(self) -> list[dict[str, Any]]:
        return list(self.nodes)

    def remove_node(self, *args: Any, **kwargs: Any) -> None:
        raise ray.OutOfScope("multi-node cluster: a node removed (Cluster.remove_node)")


@pytest.fixture
def ray_start_cluster(request: pytest.FixtureRequest) -> Iterator[OneNodeCluster]:
    params = dict(getattr(request, "param", {}) or {})
    if params.pop("num_nodes", 0) > 1:
        pytest.skip("out of scope: multi-node cluster: num_nodes > 1")
    cluster = OneNodeCluster()
    if params:
        cluster.add_node(**params)
    yield cluster
    ray._one_node.clear()
    rigd.shutdown()


@pytest.fixture
def ray_start_cluster_head(request: pytest.FixtureRequest) -> Iterator[OneNodeCluster]:
    params = dict(getattr(request, "param", {}) or {})
    if "_system_config" in params:
        params.pop("_system_config")  # Ray's raylet and GCS tuning
    cluster = OneNodeCluster()
    cluster.add_node(**params)
    rigd.init(**ray._one_node)
    yield cluster
    ray._one_node.clear()
    rigd.shutdown()


@pytest.fixture
def log_pubsub() -> None:
    pytest.skip("out of scope: Ray internals: the GCS log pubsub channel")


error_pubsub = log_pubsub
ray_start_cluster_enabled = ray_start_cluster
ray_start_cluster_init = ray_start_cluster
ray_start_2_cpus = ray_start_regular
ray_start_object_store_memory = ray_start_regular
ray_start_with_dashboard = ray_start_regular
ray_start_regular_with_external_redis = ray_start_cluster
ray_init_with_task_retry_delay = ray_start_regular


# Ray's files mark coroutine tests with ``pytest.mark.asyncio`` (pytest-asyncio);
# the runner runs them on a fresh event loop itself, without that plugin.
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "asyncio: run the coroutine test on an event loop")


@pytest.fixture
def event_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    loop = kwargs.get("event_loop") or asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(pyfuncitem.obj(**kwargs))
    finally:
        asyncio.set_event_loop(None)
        if "event_loop" not in kwargs:
            loop.close()
    return True
