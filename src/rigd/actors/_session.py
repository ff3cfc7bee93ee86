"""The session this process belongs to: start it, find it, end it.

A driver's first API call (or ``rigd.init()``) starts an embedded session: a
directory for socket files, a head on a thread, and this process's runtime.
A worker attaches to the session it was started in. ``rigd.shutdown()`` ends
the session and removes its processes, sockets and shared memory.

Its files on disk, and removing those a dead owner left, are
``_session_files``'s.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import sys
import tempfile
import threading
from typing import Any

from rigd.actors._job_config import JobConfig
from rigd.actors._options import check_name
from rigd.actors._runtime import Runtime
from rigd.actors._session_files import (
    SESSION_PREFIX,
    cleanup_after_lost_head,
    sweep_stale_sessions,
)
from rigd.actors._wire import sweep_segments

__all__ = [
    "attach_worker",
    "cleanup_after_lost_head",
    "get_runtime",
    "init",
    "is_initialized",
    "shutdown",
    "sweep_stale_sessions",
]

log = logging.getLogger(__name__)


_lock = threading.RLock()
_runtime: Runtime | None = None
_head: Any = None
_is_worker = False


def _anonymous_namespace() -> str:
    return f"anonymous-{os.urandom(4).hex()}"


def init(
    address: str | None = None,
    namespace: str | None = None,
    num_cpus: float | None = None,
    num_gpus: float | None = None,
    ignore_reinit_error: bool = False,
    job_config: JobConfig | None = None,
) -> dict[str, Any]:
    """Start (or connect to) a rigd session for this process.

    Args:
        address: ``None`` for an embedded session in this process; ``"auto"``
            for the local ``rigd serve`` daemon; the ``address`` another
            process's ``init()`` returned, to join its session (Ray's
            ``ray.init(address=...)`` on one machine).
        namespace: the namespace of named actors created from this driver
            (an anonymous one by default).
        num_cpus: CPUs actors and tasks may reserve (all of them by default).
        num_gpus: GPUs actors and tasks may reserve (none without a GPU
            inventory).
        ignore_reinit_error: return quietly if already initialized.
        job_config: Ray's ``JobConfig``; its ``ray_namespace`` is the namespace
            when ``namespace`` is not given (``namespace`` wins, as in Ray).

    Returns:
        The session's facts: ``address`` (its directory, as Ray's key),
        ``session_dir``, ``namespace``, ``num_cpus``, ``num_gpus``.

    Raises:
        RuntimeError: already initialized (and ``ignore_reinit_error`` is false).
        ConnectionError: ``address="auto"`` and no daemon is running, or the
            session at ``address`` does not answer.
        TypeError: ``namespace`` is not a string, or ``job_config`` not a ``JobConfig``.
        ValueError: an unknown address, an empty namespace or a negative resource.
    """
    global _runtime, _head
    if job_config is not None:
        if not isinstance(job_config, JobConfig):
            raise TypeError(f"job_config must be a rigd.job_config.JobConfig, got {job_config!r}")
        if namespace is None:
            namespace = job_config.ray_namespace
    if namespace is not None:
        check_name("namespace", namespace)
    if isinstance(address, str) and (address == "ray" or address.startswith("ray:")):
        # A Ray cluster runs the actors (rigd[cluster]); see _ray_backend.
        return _ray_init(address, namespace, num_cpus, num_gpus, ignore_reinit_error)
    with _lock:
        if _runtime is not None:
            if ignore_reinit_error or _is_worker:
                return _facts(_runtime)
            raise RuntimeError(
                "rigd.init() was already called in this process; call rigd.shutdown() first, "
                "or pass ignore_reinit_error=True"
            )
        if address == "auto":
            _runtime = _connect_to_daemon(namespace, num_cpus, num_gpus)
            return _facts(_runtime)
        if is_session_address(address):
            assert address is not None
            _runtime = _join_session(address, namespace, num_cpus, num_gpus)
            return _facts(_runtime)
        if address is not None:
            raise ValueError(
                f"address must be None (embedded), 'auto' (the local daemon) or the address "
                f"another process's rigd.init() returned (a live session's directory), "
                f"got {address!r}"
            )
        for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if value is not None and (isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        sweep_stale_sessions()
        cpus = float(num_cpus if num_cpus is not None else (os.cpu_count() or 1))
        # Imported here, not at the top: worker processes import this module
        # and never run a head, so they skip the head's imports (rigd.gpu's
        # inventory among them: about 50 ms of CPU per worker start). Not a
        # cycle: the head does not import this module.
        from rigd.actors._head import Head
        from rigd.gpu import GpuPool, inventory

        pool = GpuPool(inventory(), cap=num_gpus)
        gpus = pool.total
        token = f"{os.getpid()}-{os.urandom(3).hex()}"
        session_dir = tempfile.mkdtemp(prefix=f"{SESSION_PREFIX}{token}-")
        os.chmod(session_dir, 0o700)
        shm_prefix = os.path.basename(session_dir) + "-"
        try:
            head = Head(session_dir, shm_prefix, cpus, pool)
            runtime = Runtime(
                session_dir,
                shm_prefix,
                namespace or _anonymous_namespace(),
                totals={"CPU": cpus, "GPU": gpus},
            )
        except BaseException:
            shutil.rmtree(session_dir, ignore_errors=True)
            raise
        _head, _runtime = head, runtime
        return _facts(runtime)


def _connect_to_daemon(
    namespace: str | None, num_cpus: float | None, num_gpus: float | None
) -> Runtime:
    """Join the local ``rigd serve`` daemon's session as a driver.

    The daemon owns the session: this process's ``shutdown`` only leaves it.
    Its actors die with this process unless created ``lifetime="detached"``.
    """

    # Imported here: only a driver joining a daemon reads its address file.
    from rigd._address import search_daemon

    if num_cpus is not None or num_gpus is not None:
        raise ValueError(
            "num_cpus and num_gpus are the daemon's to set (its service config); "
            "leave them out with address='auto'"
        )
    search = search_daemon()
    address = search.address
    if address is None:
        raise ConnectionError(
            "rigd.init(address='auto') connects to a running `rigd serve` daemon, and none "
            f"is running on this machine ({search.explain()}); start one "
            "(`rigd serve` or `systemctl start rigd`), set RIGD_ADDRESS to its runtime "
            "directory, or call rigd.init() for an embedded runtime"
        )
    try:
        return Runtime(
            address.session_dir,
            address.shm_prefix,
            namespace or _anonymous_namespace(),
            totals={"CPU": address.num_cpus, "GPU": address.num_gpus},
        )
    except OSError as exc:
        raise ConnectionError(
            f"the rigd daemon (pid {address.pid}) could not be reached at "
            f"{address.session_dir}: {exc}; is this the daemon's user?"
        ) from exc


def is_session_address(address: object) -> bool:
    """Whether ``address`` is a live rigd session's directory (``init()["address"]``)."""
    return (
        isinstance(address, str)
        and os.path.isabs(address)
        and os.path.basename(address.rstrip("/")).startswith(SESSION_PREFIX)
        and os.path.exists(os.path.join(address, "head.sock"))
    )


def _join_session(
    session_dir: str, namespace: str | None, num_cpus: float | None, num_gpus: float | None
) -> Runtime:
    """Join another driver's session on this machine, as Ray's ``ray.init(address=...)``.

    The process that started the session owns it: this process's
    ``shutdown`` only leaves it. Its actors die with this process unless
    created ``lifetime="detached"``; detached ones live as long as the session.
    """
    from rigd.actors._to_head import ResourcesNow

    if num_cpus is not None or num_gpus is not None:
        raise ValueError(
            "num_cpus and num_gpus are set by the process that started the session; leave "
            "them out when joining it by its address"
        )
    session_dir = session_dir.rstrip("/")
    try:
        runtime = Runtime(
            session_dir,
            os.path.basename(session_dir) + "-",
            namespace or _anonymous_namespace(),
            totals={},
        )
    except OSError as exc:
        raise ConnectionError(
            f"no rigd session answers at {session_dir}: {exc}; pass the address that "
            "rigd.init() returned in a process that is still running"
        ) from exc
    total, _ = runtime.head_call(ResourcesNow())
    runtime.totals.update({"CPU": total["CPU"], "GPU": total.get("GPU", 0.0)})
    return runtime


def _facts(runtime: Runtime) -> dict[str, Any]:
    return {
        # Ray's key: where the session lives (for a daemon, what RIGD_ADDRESS names).
        "address": runtime.session_dir,
        "session_dir": runtime.session_dir,
        "namespace": runtime.namespace,
        "num_cpus": runtime.totals.get("CPU"),
        "num_gpus": runtime.totals.get("GPU"),
    }


def is_initialized() -> bool:
    """Whether this process belongs to a running rigd session (or is connected to Ray)."""
    return _runtime is not None or ray_backend() is not None


def _ray_init(
    address: str,
    namespace: str | None,
    num_cpus: float | None,
    num_gpus: float | None,
    ignore_reinit_error: bool,
) -> dict[str, Any]:
    if _runtime is not None:
        raise RuntimeError(
            "this process already runs a one-machine rigd session; call rigd.shutdown() "
            f"before rigd.init(address={address!r})"
        )
    try:
        from rigd.actors import _ray_backend
    except ImportError as exc:
        raise ImportError(
            f"rigd.init(address={address!r}) needs Ray ({exc}); install it with: "
            "pip install 'rigd[cluster]'"
        ) from exc
    return _ray_backend.init(address, namespace, num_cpus, num_gpus, ignore_reinit_error)


_local_only = False


def run_locally() -> None:
    """Run this process's rigd calls on the one-machine runtime, even in a Ray
    worker: a cluster pipeline's node supervisor runs its node's actors so."""
    global _local_only
    _local_only = True


def ray_backend() -> Any:
    """The Ray backend module when this process's calls go to Ray, else None.

    Never imports Ray: only a process that did (``rigd.init(address="ray...")``,
    or a Ray worker) can be on Ray.
    """
    if _local_only or sys.modules.get("ray") is None:
        return None  # never imported (or blocked: ``sys.modules["ray"] = None``)
    from rigd.actors import _ray_backend

    return _ray_backend if _ray_backend.connected() else None


def get_runtime() -> Runtime:
    """Return this process's runtime, starting an embedded one if needed (as Ray does)."""
    runtime = _runtime
    if runtime is not None:
        return runtime
    with _lock:
        if _runtime is None:
            init()
        assert _runtime is not None
        return _runtime


def attach_worker(runtime: Runtime) -> None:
    """Make ``runtime`` the session of this worker process."""
    global _runtime, _is_worker
    _runtime = runtime
    _is_worker = True


def in_worker() -> bool:
    """Whether this process is an actor or task worker."""
    return _is_worker


def shutdown() -> None:
    """End the session: every actor and worker, socket file and segment."""
    global _runtime, _head
    ray = ray_backend()
    if ray is not None and not ray.in_ray_worker():
        ray.shutdown()
    with _lock:
        if _is_worker:
            return  # a worker's session is its driver's to end
        runtime, head = _runtime, _head
        _runtime, _head = None, None
        if runtime is None:
            return
        if head is None:
            # A driver of the daemon's session: leave it; the daemon owns its files.
            runtime.close()
            return
        head.stop()
        runtime.close()
        shutil.rmtree(runtime.session_dir, ignore_errors=True)
        sweep_segments(runtime.shm_prefix)


atexit.register(shutdown)
