"""The head's worker processes: spawning them (exec'd fresh, never forked),
keeping spares started, the backlog of a worker not yet connected, and
reaping them with the reason each ended.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from rigd.actors._context import GPU_IDS_ENV
from rigd.actors._head_records import Peer, Worker
from rigd.actors._messages import ExitKind
from rigd.gpu import SIMULATED_GPUS_ENV, GpuInfo

__all__ = ["SPARE_WORKERS", "WorkerPool", "gpu_environment"]

# Spare workers kept started, so an actor or task starts in about a
# millisecond instead of the 80-110 ms a Python process takes to start and
# import rigd on a 2-core machine. Each spare costs about 25 MB and no CPU.
SPARE_WORKERS = 2


class WorkerPool:
    """Every worker process of a session, and the spares among them.

    Args:
        session_dir: the session's directory, passed to each worker.
        send: sends a message to a connected process (the head loop's).
        watch: calls its callback once the fd turns readable (the head loop's).
        unwatch: stops watching an fd.
        on_exit: called with a worker whose process ended (seen by its pidfd).
        stopping: whether the session is ending (no spares are started then).
    """

    def __init__(
        self,
        session_dir: str,
        send: Callable[[Peer, tuple[Any, ...]], None],
        watch: Callable[[int, Callable[[], None]], None],
        unwatch: Callable[[int], None],
        on_exit: Callable[[Worker], None],
        stopping: Callable[[], bool],
    ) -> None:
        self._session_dir = session_dir
        self._send = send
        self._watch = watch
        self._unwatch = unwatch
        self._on_exit = on_exit
        self._stopping = stopping
        self._workers: dict[str, Worker] = {}
        self._spares: list[Worker] = []
        self._ids = itertools.count(1)

    def all(self) -> list[Worker]:
        """Every worker not yet reaped."""
        return list(self._workers.values())

    def spares(self) -> list[Worker]:
        """The spare workers (started, no job yet)."""
        return list(self._spares)

    def spawn(self, env_overrides: dict[str, str] | None = None) -> Worker:
        """Start a new worker process (``env_overrides`` on top of this environment)."""
        worker_id = f"w{next(self._ids)}"
        env = dict(os.environ)
        path = [p or os.getcwd() for p in sys.path]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(path))
        # A CPU-only worker must not take a GPU by accident; GPU placement
        # overrides this with the UUIDs it assigns.
        env["CUDA_VISIBLE_DEVICES"] = ""
        if env_overrides:
            env.update(env_overrides)
        popen = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rigd.actors._worker",
                self._session_dir,
                worker_id,
                str(os.getpid()),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            close_fds=True,
            # Its own process group: a signal to the driver's group (`timeout`,
            # a shell's job control) reaches the driver, which stops its actors
            # in order; the worker ends with its head whatever (PDEATHSIG).
            process_group=0,
        )
        worker = Worker(worker_id, popen)
        self._workers[worker_id] = worker
        # A pidfd turns readable when the process ends: deaths are seen even
        # before the worker connects (killed while starting, or an import
        # error), not only through its socket's EOF.
        try:
            worker.pidfd = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):
            worker.pidfd = None
        else:
            self._watch(worker.pidfd, lambda: self._on_exit(worker))
        return worker

    def take(self) -> Worker:
        """A worker for a new job: a spare (connected ones first), else a new one."""
        self._spares.sort(key=lambda w: w.peer is None)
        worker = self._spares.pop(0) if self._spares else self.spawn()
        self.refill()
        return worker

    def take_for(self, gpus: tuple[GpuInfo, ...]) -> Worker:
        """A worker for a job on ``gpus``: a spare, or for GPUs a new process
        whose CUDA_VISIBLE_DEVICES names them (set before CUDA loads)."""
        if not gpus:
            return self.take()
        return self.spawn(gpu_environment(gpus))

    def refill(self) -> None:
        """Start a spare if fewer than ``SPARE_WORKERS`` are kept."""
        # One spare starting at a time: a burst of creations must not
        # compete with spares for the CPUs.
        if self._stopping() or len(self._spares) >= SPARE_WORKERS:
            return
        if any(w.peer is None for w in self._spares):
            return
        self._spares.append(self.spawn())

    def connect(self, worker_id: str, peer: Peer) -> Worker | None:
        """The worker ``worker_id`` connected as ``peer``: send its backlog.

        Returns the worker, or None for an id the pool does not know.
        """
        worker = self._workers.get(worker_id)
        if worker is None:
            return None
        worker.peer = peer
        peer.worker = worker
        for queued in worker.backlog:
            self._send(peer, queued)
        worker.backlog.clear()
        if worker in self._spares:
            self.refill()
        return worker

    def is_spare(self, worker: Worker) -> bool:
        """Whether ``worker`` is a spare."""
        return worker in self._spares

    def send(self, worker: Worker, message: tuple[Any, ...]) -> None:
        """Send ``message`` to ``worker``, once it connects if it has not yet."""
        if worker.peer is None:
            worker.backlog.append(message)
        else:
            self._send(worker.peer, message)

    def reap(self, worker: Worker) -> bool:
        """Collect an ended worker, and record why it ended; False if done already."""
        if self._workers.get(worker.worker_id) is not worker:
            return False
        if worker.pidfd is not None:
            self._unwatch(worker.pidfd)
            os.close(worker.pidfd)
            worker.pidfd = None
        try:
            code = worker.popen.wait(timeout=5)
        except subprocess.TimeoutExpired:
            worker.popen.kill()
            code = worker.popen.wait()
        self._workers.pop(worker.worker_id, None)
        if worker in self._spares:
            self._spares.remove(worker)
            self.refill()
        if worker.exit_kind is None:
            worker.exit_kind = ExitKind.CRASHED
            if code < 0:
                worker.exit_detail = (
                    f"its process (pid {worker.popen.pid}) was killed by signal "
                    f"{signal.Signals(-code).name}"
                )
            else:
                worker.exit_detail = f"its process (pid {worker.popen.pid}) exited with code {code}"
        return True


def gpu_environment(gpus: tuple[GpuInfo, ...]) -> dict[str, str]:
    """The environment of a process placed on ``gpus``, set before CUDA loads."""
    return {
        "CUDA_VISIBLE_DEVICES": ",".join(g.uuid for g in gpus),
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        GPU_IDS_ENV: ",".join(str(g.index) for g in gpus),
        # Simulated GPUs (RIGD_FAKE_GPUS): CUDA must not be asked.
        SIMULATED_GPUS_ENV: "1" if any(g.simulated for g in gpus) else "",
    }
