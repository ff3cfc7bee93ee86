"""Single-machine fixtures under the names Ray's tests use (own code)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

import pytest

import rigd

CLUSTER = "out of scope: multi-node cluster fixture"
OBJECT_STORE = "out of scope: object-store eviction (rigd has no object store)"

#: Tests of behaviour Ray itself no longer has, or of a Ray-internal hook,
#: by name; README's "Differences from Ray" explains each.
NOT_RAYS_API = {
    "test_caching_actors": (
        "behaviour modern Ray dropped: Ray 1.x refused actors before ray.init(); "
        "Ray 2 starts a session on first use, as rigd does"
    ),
    "test_decorated_method": (
        "Ray internal hook: __ray_invocation_decorator__ (used by Ray's own libraries)"
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
        pytest.skip(OBJECT_STORE)
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


@pytest.fixture
def ray_start_cluster() -> None:
    pytest.skip(CLUSTER)


ray_start_cluster_head = ray_start_cluster
ray_start_cluster_enabled = ray_start_cluster
ray_start_cluster_init = ray_start_cluster
ray_start_cluster_head_with_external_redis = ray_start_cluster
call_ray_start = ray_start_cluster
call_ray_stop_only = ray_start_cluster
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
