"""The ``progress`` event of ``/v1/events``: once a second while a run goes on.

Its figures are the daemon's Prometheus metrics (``rigd.service._metrics``),
under the same names and labels, so a plot fed by the event stream and a
Grafana panel fed by ``/metrics`` show the same series::

    {"type": "progress", "time": "...", "state": "running", "run_id": "m12",
     "elapsed_s": 12.0,
     "metrics": {"rigd_link_rate_hz": [{"labels": {"link": "camera.frames"},
                                        "value": 200.0}], ...}}
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

if TYPE_CHECKING:
    from rigd.service._daemon import Daemon

__all__ = ["PROGRESS_METRICS", "ProgressEvent", "progress_event"]

#: The metrics a progress event carries (all of ``/metrics`` but the run counts).
PROGRESS_METRICS = (
    "rigd_link_frames_written",
    "rigd_link_rate_hz",
    "rigd_link_fill_ratio",
    "rigd_link_frames_read",
    "rigd_link_frames_dropped",
    "rigd_link_frames_skipped",
    "rigd_link_wake_latency_p50_seconds",
    "rigd_actor_alive",
    "rigd_actor_restarts",
    "rigd_run_bytes_written",
    "rigd_disk_free_bytes",
    "rigd_disk_minutes_left",
)


class Sample(BaseModel):
    """One sample of a metric: its labels and value."""

    labels: dict[str, str] = Field(description="The metric's labels, e.g. {'link': 'cam.frames'}.")
    value: float


class ProgressEvent(BaseModel):
    """``event: progress`` on ``/v1/events``, once a second during a run."""

    type: str = Field(default="progress", description="Always 'progress'.")
    time: str = Field(description="When it was sampled (UTC, ISO 8601).")
    state: str = Field(description="The daemon's state.")
    run_id: str
    elapsed_s: float = Field(description="Seconds since the run started.")
    metrics: dict[str, list[Sample]] = Field(
        description="Metric name (as on /metrics) to its samples: frames written, rate (Hz), "
        "fill (0-1), frames read and dropped per link and reader, reader wake-up latency p50 "
        "(s), actors alive and restarts, the run's bytes written, the data disk's free bytes "
        "and minutes left."
    )


def progress_event(daemon: Daemon, run_id: str) -> dict[str, Any]:
    """The progress event's fields (without ``type``, ``time`` and ``state``,
    which ``Daemon._publish`` adds), from the daemon's latest status sample."""
    from rigd.service._metrics import metric_samples

    metrics: dict[str, list[dict[str, Any]]] = {}
    for name, labels, value in metric_samples(daemon):
        if name in PROGRESS_METRICS:
            metrics.setdefault(name, []).append({"labels": labels, "value": value})
    run = daemon.status().get("run") or {}
    started = run.get("started_at")
    elapsed = 0.0
    if started:
        import datetime as dt

        elapsed = max(0.0, time.time() - dt.datetime.fromisoformat(started).timestamp())
    return {"run_id": run_id, "elapsed_s": round(elapsed, 3), "metrics": metrics}


def progress_schema() -> dict[str, Any]:
    """The progress event's JSON schema (each event's ``data:`` line), self-contained:
    the ``/v1/events`` response's schema in the OpenAPI document."""
    schema = ProgressEvent.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    text = json.dumps(schema)
    for name, definition in defs.items():
        text = text.replace(
            json.dumps({"$ref": f"#/components/schemas/{name}"}), json.dumps(definition)
        )
    result: dict[str, Any] = json.loads(text)
    return result
