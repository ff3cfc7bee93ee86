"""rigd's actor API on a Ray cluster: ``rigd.init(address="ray://HOST:PORT")``.

The one module that imports ``ray`` (``pip install 'rigd[cluster]'``). Once
``init`` connected to Ray, ``rigd.remote`` classes and functions start Ray
actors and tasks, and ``get``, ``wait``, ``put``, ``kill``, ``get_actor``,
``cancel`` and ``get_gpu_ids`` are Ray's, with Ray's errors raised as rigd's
(``rigd.exceptions``: ``GetTimeoutError``, ``TaskCancelledError``,
``ActorDiedError``, ``TaskError`` mixed with the cause's class, ...).
Handles and refs are Ray's own. Inside a Ray worker, rigd's functions are
Ray's too (a task that receives a handle calls ``rigd.get``).

Addresses: ``"ray"`` (the Ray cluster this machine belongs to, or a new
local one, as ``ray.init()``), ``"ray://HOST:PORT"`` (Ray Client),
``"ray:HOST:PORT"`` (a cluster's GCS address, as ``ray.init(address=...)``)
and ``"ray:auto"``.

What Ray lacks, refused here with the reason: options Ray does not take
(none of ``ActorOptions`` today), rigd's own placement groups in a
scheduling strategy (pass Ray's), and ``num_cpus``/``num_gpus`` to ``init``
when joining a running cluster (Ray refuses them there).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import ray
import ray.exceptions as rex
from ray.util import scheduling_strategies as ray_strategies
from ray.util.placement_group import PlacementGroup as RayPlacementGroup

from rigd._exceptions import (
    ActorDiedError,
    GetTimeoutError,
    ObjectLostError,
    OwnerDiedError,
    ResourceUnavailableError,
    TaskCancelledError,
    TaskError,
    WorkerCrashedError,
)
from rigd.actors._options import ActorOptions, TaskOptions
from rigd.actors._ray_address import check_answers
from rigd.actors._scheduling import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

__all__ = [
    "actor_class_remote",
    "alive_nodes",
    "available_resources",
    "cancel",
    "cluster_resources",
    "exit_actor",
    "get",
    "get_actor",
    "get_gpu_ids",
    "in_ray_worker",
    "init",
    "is_ray_address",
    "kill",
    "nodes",
    "put",
    "release",
    "reserve",
    "shutdown",
    "task_remote",
    "wait",
]

_connected = False


def is_ray_address(address: object) -> bool:
    """Whether ``address`` names a Ray cluster (``ray``, ``ray://...``, ``ray:...``)."""
    return isinstance(address, str) and (address == "ray" or address.startswith("ray:"))


def in_ray_worker() -> bool:
    """Whether this process is a Ray worker (an actor or task on a Ray node)."""
    worker = ray._private.worker.global_worker
    return bool(ray.is_initialized() and worker.mode == ray.WORKER_MODE)


def connected() -> bool:
    """Whether rigd's calls go to Ray in this process."""
    return _connected or in_ray_worker()


def init(
    address: str,
    namespace: str | None,
    num_cpus: float | None,
    num_gpus: float | None,
    ignore_reinit_error: bool,
) -> dict[str, Any]:
    """Connect to Ray (see the module's docstring for ``address``); return the session's facts.

    Raises:
        RuntimeError: already connected (and ``ignore_reinit_error`` is false).
        ValueError: ``num_cpus`` or ``num_gpus`` with an existing cluster's address.
        ConnectionError: no Ray cluster at ``address``: nothing answers there as
            Ray's GCS or Ray Client server within seconds (``_ray_address``).
    """
    global _connected
    if ray.is_initialized() and not ignore_reinit_error:
        raise RuntimeError(
            "rigd.init() was already called in this process (it is connected to Ray); call "
            "rigd.shutdown() first, or pass ignore_reinit_error=True"
        )
    if address == "ray":
        target: str | None = None
    elif address.startswith("ray://"):
        target = address
    else:
        target = address.removeprefix("ray:")
    if target is not None and (num_cpus is not None or num_gpus is not None):
        raise ValueError(
            f"num_cpus and num_gpus size a new Ray cluster; {address!r} names a running one, "
            "whose nodes say what they have (ray start --num-cpus ...); drop them"
        )
    if target is not None and not ray.is_initialized():
        check_answers(address, target)  # Ray would wait minutes for an address that is not one
    kwargs: dict[str, Any] = {"namespace": namespace, "ignore_reinit_error": ignore_reinit_error}
    if target is None:
        kwargs.update(num_cpus=num_cpus, num_gpus=num_gpus)
    context = ray.init(address=target, **kwargs)
    _connected = True
    runtime = ray.get_runtime_context()
    resources = ray.cluster_resources()  # type: ignore[no-untyped-call]
    return {
        "address": address,
        "ray_address": getattr(context, "address_info", {}).get("address"),
        "namespace": runtime.namespace,
        "num_cpus": resources.get("CPU", 0.0),
        "num_gpus": resources.get("GPU", 0.0),
        "backend": "ray",
    }


def shutdown() -> None:
    """Disconnect from Ray (a cluster's actors with ``lifetime="detached"`` stay)."""
    global _connected
    if _connected:
        _connected = False
        ray.shutdown()


# -- errors -------------------------------------------------------------------------------


@contextmanager
def _rigd_errors() -> Iterator[None]:
    """Raise Ray's errors as rigd's (each rigd class keeps Ray's message)."""
    try:
        yield
    except rex.GetTimeoutError as exc:
        raise GetTimeoutError(str(exc)) from exc
    except rex.TaskCancelledError as exc:
        raise TaskCancelledError(str(exc)) from exc
    except rex.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        # Ray's error as the cause's class (``RayTaskError(ValueError)``) keeps
        # neither its function's name nor a plain traceback: both are read
        # from its message, whose title Ray colours for a terminal.
        text = _ANSI.sub("", getattr(exc, "traceback_str", None) or str(exc))
        raise TaskError.from_remote(
            getattr(exc, "function_name", None) or _function_in(text),
            cause if isinstance(cause, BaseException) else None,
            type(cause).__name__ if cause is not None else "RayTaskError",
            text,
        ) from exc
    except (rex.RayActorError, rex.ActorUnavailableError) as exc:
        raise ActorDiedError(str(exc)) from exc
    except rex.WorkerCrashedError as exc:
        raise WorkerCrashedError(str(exc)) from exc
    except rex.OwnerDiedError as exc:
        raise OwnerDiedError(str(exc)) from exc
    except rex.ObjectLostError as exc:
        raise ObjectLostError(str(exc)) from exc


#: A terminal's colour codes (Ray's error titles have them).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _function_in(text: str) -> str:
    """The method or task a Ray error's message names (``ray::Class.method()``), or "?"."""
    found = re.search(r"ray::([^\s(]+)\(", text)
    return found.group(1) if found else "?"


def get(refs: Any, timeout: float | None = None) -> Any:
    """``ray.get``, with rigd's errors."""
    with _rigd_errors():
        return ray.get(refs, timeout=timeout)


def wait(
    refs: Sequence[Any], num_returns: int, timeout: float | None, fetch_local: bool
) -> tuple[list[Any], list[Any]]:
    """``ray.wait``."""
    with _rigd_errors():
        ready, rest = ray.wait(
            list(refs), num_returns=num_returns, timeout=timeout, fetch_local=fetch_local
        )
    return ready, rest


def put(value: Any) -> Any:
    """``ray.put``."""
    return ray.put(value)


def kill(handle: Any, no_restart: bool = True) -> None:
    """``ray.kill``: the actor dies at once; its ``__rigd_shutdown__`` does not run."""
    ray.kill(handle, no_restart=no_restart)


def cancel(ref: Any, force: bool = False, recursive: bool = True) -> None:
    """``ray.cancel``."""
    ray.cancel(ref, force=force, recursive=recursive)


def get_actor(name: str, namespace: str | None = None) -> Any:
    """``ray.get_actor``: ``ValueError`` when there is no such actor."""
    return ray.get_actor(name, namespace=namespace)


def get_gpu_ids() -> list[int]:
    """``ray.get_gpu_ids``."""
    return [int(i) for i in ray.get_gpu_ids()]


def cluster_resources() -> dict[str, float]:
    """``ray.cluster_resources``."""
    return dict(ray.cluster_resources())  # type: ignore[no-untyped-call]


def available_resources() -> dict[str, float]:
    """``ray.available_resources``."""
    return dict(ray.available_resources())  # type: ignore[no-untyped-call]


def nodes() -> list[dict[str, Any]]:
    """``ray.nodes``."""
    return list(ray.nodes())  # type: ignore[no-untyped-call]


# -- nodes and placement groups (cluster pipelines) ------------------------------------------


def alive_nodes() -> list[dict[str, Any]]:
    """The cluster's live nodes: ``node_id``, ``ip``, ``hostname``, ``resources``."""
    return [
        {
            "node_id": node["NodeID"],
            "ip": node["NodeManagerAddress"],
            "hostname": node.get("NodeManagerHostname", node["NodeManagerAddress"]),
            "resources": dict(node.get("Resources", {})),
        }
        for node in ray.nodes()  # type: ignore[no-untyped-call]
        if node.get("Alive")
    ]


def reserve(bundles: list[dict[str, float]], strategy: str, timeout: float) -> Any:
    """A placement group of ``bundles``, all placed or none (Ray's atomic reservation).

    Raises:
        ResourceUnavailableError: not placed within ``timeout`` s (the group is removed).
    """
    group = ray.util.placement_group(bundles, strategy=strategy)
    try:
        ray.get(group.ready(), timeout=timeout)
    except rex.GetTimeoutError:
        ray.util.remove_placement_group(group)
        raise ResourceUnavailableError(
            f"the cluster could not place {bundles} ({strategy}) within {timeout:g} s: a "
            "node named in the pipeline is missing or full (ray status lists them)"
        ) from None
    return group


def release(group: Any) -> None:
    """Remove a placement group (its actors end)."""
    ray.util.remove_placement_group(group)


# -- classes and functions ------------------------------------------------------------------


def _strategy(value: Any) -> Any:
    if isinstance(value, NodeAffinitySchedulingStrategy):
        return ray_strategies.NodeAffinitySchedulingStrategy(
            node_id=value.node_id,
            soft=value.soft,
            _spill_on_unavailable=value._spill_on_unavailable,
            _fail_on_unavailable=value._fail_on_unavailable,
        )
    if isinstance(value, PlacementGroupSchedulingStrategy):
        group = value.placement_group
        if not isinstance(group, RayPlacementGroup):
            raise ValueError(
                "on Ray, a PlacementGroupSchedulingStrategy needs Ray's placement group "
                "(ray.util.placement_group(...)), not rigd's one-machine group"
            )
        return ray_strategies.PlacementGroupSchedulingStrategy(
            placement_group=group,
            placement_group_bundle_index=value.placement_group_bundle_index,
            placement_group_capture_child_tasks=value.placement_group_capture_child_tasks,
        )
    return value  # None, "DEFAULT", "SPREAD", or one of Ray's own


def _actor_options(options: ActorOptions) -> dict[str, Any]:
    out: dict[str, Any] = {
        "num_gpus": options.num_gpus,
        "max_restarts": options.max_restarts,
        "max_task_retries": options.max_task_retries,
        "enable_task_events": options.enable_task_events,
    }
    if options.num_cpus is not None:
        out["num_cpus"] = options.num_cpus
    if options.resources:
        out["resources"] = dict(options.resources)
    if options.max_concurrency is not None:
        out["max_concurrency"] = options.max_concurrency
    if options.concurrency_groups:
        out["concurrency_groups"] = dict(options.concurrency_groups)
    if options.name is not None:
        out["name"] = options.name
        out["get_if_exists"] = options.get_if_exists
    if options.namespace is not None:
        out["namespace"] = options.namespace
    if options.lifetime is not None:
        out["lifetime"] = options.lifetime
    if options.scheduling_strategy is not None:
        out["scheduling_strategy"] = _strategy(options.scheduling_strategy)
    return out


def _task_options(options: TaskOptions) -> dict[str, Any]:
    out: dict[str, Any] = {
        "num_cpus": options.num_cpus,
        "num_gpus": options.num_gpus,
        "max_retries": options.max_retries,
        "num_returns": options.num_returns,
        "retry_exceptions": options.retry_exceptions,
        "enable_task_events": options.enable_task_events,
    }
    if options.resources:
        out["resources"] = dict(options.resources)
    if options.name is not None:
        out["name"] = options.name
    if options.scheduling_strategy is not None:
        out["scheduling_strategy"] = _strategy(options.scheduling_strategy)
    return out


def exit_actor() -> None:
    """``ray.actor.exit_actor``: end this actor gracefully (``__rigd_shutdown__`` runs)."""
    ray.actor.exit_actor()  # type: ignore[no-untyped-call]


def _terminate(self: Any) -> None:
    exit_actor()


def _shutdown(self: Any) -> None:
    hook = getattr(self, "__rigd_shutdown__", None)
    if hook is not None:
        hook()


@functools.lru_cache(maxsize=256)  # least recently used go first: a program makes a few
def _ray_actor_class(
    cls: type,
    method_options: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...],
    concurrency_groups: tuple[tuple[str, int], ...],
) -> Any:
    """Ray's ``ActorClass`` of ``cls``, made once: Ray exports (pickles, sends to the
    GCS) each new one again. Each actor's options go to ``.options()``, as Ray's users
    write ``Counter.options(name=..., lifetime="detached").remote()``, except
    ``concurrency_groups``, which Ray takes in ``ray.remote`` only.

    ``__rigd_shutdown__`` runs as ``__ray_shutdown__`` (a graceful end),
    ``__rigd_terminate__`` is Ray's exit.
    """
    namespace: dict[str, Any] = {"__rigd_terminate__": _terminate}
    if inspect.getattr_static(cls, "__rigd_shutdown__", None) is not None:
        namespace["__ray_shutdown__"] = _shutdown
    for name, options in method_options:
        # Ray reads a method's options from attributes ray.method sets on the function.
        ray.method(**dict(options))(inspect.getattr_static(cls, name))
    sub = type(cls.__name__, (cls,), namespace)
    sub.__qualname__ = cls.__qualname__
    sub.__module__ = cls.__module__
    if not concurrency_groups:
        return ray.remote(sub)
    groups: dict[str, Any] = {"concurrency_groups": dict(concurrency_groups)}
    return ray.remote(**groups)(sub)


@functools.lru_cache(maxsize=256)
def _ray_function(fn: Callable[..., Any]) -> Any:
    """Ray's ``RemoteFunction`` of ``fn``, made once: Ray exports (pickles, disassembles,
    sends to the GCS: about 11 ms) and each worker loads each new one again. Each task's
    options go to ``.options()``, as Ray's users write ``f.options(num_gpus=1).remote()``;
    as in Ray, ``fn`` is pickled at its first call in a job (a closure's values then)."""
    return ray.remote(fn)


def actor_class_remote(
    cls: type,
    options: ActorOptions,
    method_options: dict[str, dict[str, Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """Start a Ray actor of ``cls``; return Ray's handle."""
    ray_options = _actor_options(options)
    groups = ray_options.pop("concurrency_groups", {})
    ray_class = _ray_actor_class(
        cls,
        tuple(sorted((name, tuple(sorted(o.items()))) for name, o in method_options.items())),
        tuple(sorted(groups.items())),
    )
    with _rigd_errors():
        return ray_class.options(**ray_options).remote(*args, **kwargs)


def task_remote(
    fn: Callable[..., Any], options: TaskOptions, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """Run ``fn`` as a Ray task; return Ray's ref (or refs)."""
    return _ray_function(fn).options(**_task_options(options)).remote(*args, **kwargs)
