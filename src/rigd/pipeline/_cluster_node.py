"""NodeSupervisor: one node's part of a cluster pipeline, in a Ray actor placed there.

``ClusterPipeline`` (``_cluster``) starts one per node; each runs its node's
part of the pipeline with rigd's one-machine supervisor (``Pipeline``: its
actors are processes of that node, its rings in that node's shared memory),
loaded first and run only once every node loaded (``_cluster_start``).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import Any

import yaml

from rigd._exceptions import PipelineFailedError
from rigd.actors import get, run_locally
from rigd.actors import shutdown as shutdown_runtime
from rigd.config import load_pipeline
from rigd.pipeline._cluster_ports import free_ports
from rigd.pipeline._cluster_start import failure_of
from rigd.pipeline._plan import plan_pipeline
from rigd.pipeline._run_end import abort_loaded
from rigd.pipeline._supervisor import Pipeline

__all__ = ["NodeSupervisor"]

log = logging.getLogger("rigd.pipeline._cluster")


class NodeSupervisor:
    """One node's part of a cluster pipeline: rigd's supervisor, in a Ray actor there."""

    def __init__(self) -> None:
        run_locally()  # this node's actors: processes and rings here
        self._pipeline: Pipeline | None = None

    def free_ports(self, count: int, port_range: tuple[int, int] | None) -> dict[str, Any]:
        """``{"ports": [...]}``: ``count`` tcp ports free on this node's host, for
        bridges (see ``free_ports``); ``{"error": why}`` if the range has too few."""
        try:
            return {"ports": free_ports(count, port_range)}
        except ValueError as exc:
            return {"error": str(exc)}

    def load(
        self, part: dict[str, Any], run_id: str, metadata: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Plan and load this node's part (``Pipeline.load``: no step runs yet).

        Returns ``{"host": this host's name}``, or, if it failed (its files
        then sealed ``aborted``), ``failure_of``'s ``{"error": ..., "port_in_use": ...}``.
        """
        try:
            text = yaml.safe_dump(part, sort_keys=False)
            pfile = load_pipeline(f"<{part.get('name', 'pipeline')} on this node>", text=text)
            self._pipeline = Pipeline(plan_pipeline(pfile), run_id=run_id, metadata=metadata)
            self._pipeline.load()
        except Exception as exc:  # noqa: BLE001 - said to the driver, which aborts the others
            log.error("this node's part could not start: %s", exc)
            return failure_of(exc)
        return {"host": socket.gethostname()}

    def run(self) -> None:
        """Run the loaded part (``Pipeline.run``: downstream first, sources last)."""
        assert self._pipeline is not None
        self._pipeline.run()

    def abort(self, reason: str) -> dict[str, Any]:
        """End this node's part before it runs (another node's failed to start):
        its files are sealed ``aborted`` (``abort_loaded``); ``{"files": [...]}``."""
        pipeline, self._pipeline = self._pipeline, None
        files: list[str] = []
        if pipeline is not None:
            files = list(abort_loaded(pipeline, reason).files)
        shutdown_runtime()
        return {"files": files}

    def wait(self, timeout: float) -> bool:
        """True once this node's part ended: on its own, or failed (its report,
        from ``stop``, says why; ``Pipeline.wait`` raises for that), or was stopped."""
        pipeline = self._pipeline
        if pipeline is None:
            return True  # stopped (or aborted): ended
        try:
            return pipeline.wait(timeout)
        except PipelineFailedError:
            return True

    def state(self) -> str:
        return self._pipeline.state if self._pipeline is not None else "created"

    def note(self, text: str) -> None:
        """Put an event in the ledger of every recorder of this node."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        for name in pipeline.plan.recorders:
            get(pipeline.handle(name).note_event.remote(text), timeout=10)

    def stop(self, timeout: float, failure: str | None = None) -> dict[str, Any]:
        """Stop this node's part (``Pipeline.stop``); ``failure``: the cluster
        run failed (a node lost): this part fails with it, its files sealed
        ``run_state = "failed"`` with that ``failure``."""
        pipeline = self._pipeline
        if pipeline is None:
            return {}
        if failure is not None and pipeline.failure is None:
            pipeline.failure = failure
        report = pipeline.stop(timeout=timeout)
        self._pipeline = None
        shutdown_runtime()  # this node's rigd processes end with the run
        return {
            "state": report.state,
            "files": list(report.files),
            "frames": dict(report.frames),
            "dropped": dict(report.dropped),
            "restarts": dict(report.restarts),
            "failure": report.failure,
            "actor_lines": dict(report.actor_lines),
        }
