"""What the daemon reports: its runs, status, health, the watchdog, GPUs, actors.

``Daemon`` (``_daemon``) is the state machine; this is its read side, the
answers to ``GET`` requests, each taken under the daemon's lock from the
state the machine keeps. The samples themselves (actors, links, the disk,
GPUs, twice a second) are the monitor's (``_monitor``).
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from rigd.actors import list_actors
from rigd.config import ServiceConfig
from rigd.gpu import inventory
from rigd.pipeline import Pipeline, Plan
from rigd.service._gpus import gpu_report
from rigd.service._monitor import Monitor, Watched
from rigd.service._records import DaemonState, NotFoundError, RunRecord

__all__ = ["DaemonViews"]


class DaemonViews:
    """The daemon's read side (a base of ``Daemon``, which sets these)."""

    config: ServiceConfig
    failure: str | None
    _failed_start: bool
    _lock: threading.RLock
    _state: DaemonState
    _plan: Plan | None
    _pipeline: Pipeline | None
    _run: RunRecord | None
    _runs: dict[str, RunRecord]
    _monitor: Monitor

    # -- runs ------------------------------------------------------------------------------

    def runs(self) -> list[RunRecord]:
        with self._lock:
            return list(self._runs.values())

    def run(self, run_id: str) -> RunRecord:
        with self._lock:
            if run_id == "current" and self._run is not None:
                return self._run
            try:
                return self._runs[run_id]
            except KeyError:
                raise NotFoundError(
                    f"no run {run_id!r} on this daemon; GET /v1/runs lists them"
                ) from None

    # -- status, health ----------------------------------------------------------------------

    @property
    def disk(self) -> dict[str, Any]:
        """The data directory's free space against the running run's data rate."""
        return self._monitor.disk

    def _watched(self) -> Watched:
        with self._lock:
            # During a run, the plan as the run resolved it (device sources' links).
            plan = self._pipeline.plan if self._pipeline is not None else self._plan
            return self._pipeline, plan, self._run, self._state == DaemonState.RUNNING

    def status(self) -> dict[str, Any]:
        """The state, the pipeline, the run, actors and links (sampled twice a second)."""
        with self._lock:
            plan = self._plan
            run = self._run.to_dict() if self._run is not None else None
            snapshot = self._monitor.snapshot
            pipeline = self._pipeline
            return {
                "state": self._state.value,
                "failure": self.failure,
                "pipeline": plan.name if plan else None,
                "namespace": pipeline.namespace if pipeline else None,
                "run": run,
                "actors": snapshot["actors"],
                "links": snapshot["links"],
                "gpus": self._monitor.gpus,
                "disk": self._monitor.disk,
                "sampled_at": snapshot["sampled_at"],
            }

    def health(self) -> tuple[bool, str]:
        """Whether the daemon is healthy, and a one-line status for systemd
        (``Monitor.health`` says when it is not: stuck, or failed for a cause
        that needs a person)."""
        with self._lock:
            state, run, failure = self._state, self._run, self.failure
            failed_start = self._failed_start
        verdict = self._monitor.health(
            state, run, failure, self.config.watchdog_stall_s, failed_start=failed_start
        )
        if verdict is not None:
            return verdict
        pipeline = f" {self._plan.name}" if self._plan is not None else ""
        return True, f"{state.value}{pipeline}"

    def feeds_watchdog(self) -> bool:
        """Whether systemd's watchdog is fed now: the daemon is healthy, or
        ``failed`` for a cause that needs a person (a restart of the daemon
        fixes no camera and no disk, and would hide the cause), while its
        monitor still samples."""
        healthy, _ = self.health()
        return healthy or (self._state == DaemonState.FAILED and self._monitor.sampling)

    # -- actors, GPUs -------------------------------------------------------------------------

    def loaded_plan(self) -> Plan | None:
        """The loaded pipeline's plan (None before a load)."""
        with self._lock:
            return self._plan

    def ring_segments(self) -> dict[str, str]:
        """The running pipeline's rings: segment by link name (empty without a run)."""
        with self._lock:
            pipeline = self._pipeline
        return pipeline.ring_segments() if pipeline is not None else {}

    def gpus(self) -> list[dict[str, Any]]:
        """The GPUs and what is placed on each, now."""
        return gpu_report(inventory(), list_actors())

    def actors(self) -> list[dict[str, Any]]:
        """Every actor of the session (the pipeline's and the scripts' detached ones)."""
        return [dataclasses.asdict(info) for info in list_actors()]
