"""Prometheus metrics, collected from the daemon's latest status sample at each scrape."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from rigd.service._daemon import Daemon

__all__ = ["metric_samples", "metrics_text"]

_STATES = ("idle", "loaded", "running", "stopping", "failed")


class _DaemonCollector(Collector):
    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def collect(self) -> Iterator[Metric]:
        status = self.daemon.status()
        state = GaugeMetricFamily(
            "rigd_state", "1 for the daemon's current state, 0 for the others", labels=["state"]
        )
        for name in _STATES:
            state.add_metric([name], 1.0 if status["state"] == name else 0.0)
        yield state
        healthy, _ = self.daemon.health()
        yield GaugeMetricFamily("rigd_healthy", "1 if the daemon is healthy", value=float(healthy))
        disk = dict(self.daemon.disk)
        if disk.get("free_bytes", -1) >= 0:
            yield GaugeMetricFamily(
                "rigd_disk_free_bytes", "Free bytes in the data directory", value=disk["free_bytes"]
            )
        if "minutes_left" in disk:
            yield GaugeMetricFamily(
                "rigd_disk_minutes_left",
                "Minutes until the running run fills the data directory's disk",
                value=disk["minutes_left"],
            )
        yield GaugeMetricFamily(
            "rigd_disk_warning",
            "1 while the disk fills within disk_warn_minutes",
            value=float(bool(disk.get("warning"))),
        )
        runs = self.daemon.runs()
        finished = CounterMetricFamily(
            "rigd_runs", "Runs this daemon has recorded, by how they ended", labels=["state"]
        )
        for outcome in ("complete", "failed"):
            finished.add_metric([outcome], sum(1 for r in runs if r.state == outcome))
        yield finished

        written = CounterMetricFamily(
            "rigd_link_frames_written", "Frames written into each ring this run", labels=["link"]
        )
        rate = GaugeMetricFamily(
            "rigd_link_rate_hz", "Frames per second into each ring", labels=["link"]
        )
        fill = GaugeMetricFamily(
            "rigd_link_fill_ratio", "How full each ring is (0-1)", labels=["link"]
        )
        read = CounterMetricFamily(
            "rigd_link_frames_read", "Frames each reader read this run", labels=["link", "reader"]
        )
        dropped = CounterMetricFamily(
            "rigd_link_frames_dropped",
            "Frames each reader missed this run (latest-policy readers skip by design)",
            labels=["link", "reader"],
        )
        skipped = CounterMetricFamily(
            "rigd_link_frames_skipped",
            "Frames the source dropped this run because the ring was full (ring_full)",
            labels=["link"],
        )
        for link in status["links"]:
            written.add_metric([link["ring"]], link["written"])
            skipped.add_metric([link["ring"]], link.get("skipped", 0))
            rate.add_metric([link["ring"]], link["rate_hz"])
            fill.add_metric([link["ring"]], link["fill"])
            for reader in link["readers"]:
                read.add_metric([link["ring"], reader["input"]], reader["read"])
                dropped.add_metric([link["ring"], reader["input"]], reader["dropped"])
        latency = GaugeMetricFamily(
            "rigd_link_wake_latency_p50_seconds",
            "Median time from a frame's commit to its reader waking (readers that slept)",
            labels=["link", "reader"],
        )
        for link in status["links"]:
            for reader in link["readers"]:
                if reader.get("latency_p50_us") is not None:
                    latency.add_metric(
                        [link["ring"], reader["input"]], reader["latency_p50_us"] / 1e6
                    )
        yield from (written, rate, fill, read, dropped, skipped, latency)
        run = status.get("run") or {}
        if run:
            size = 0
            for path in run.get("files", []):
                with contextlib.suppress(OSError):
                    size += os.stat(path).st_size
            yield GaugeMetricFamily(
                "rigd_run_bytes_written", "Bytes of the latest run's files on disk", value=size
            )

        restarts = CounterMetricFamily(
            "rigd_actor_restarts", "Restarts of each pipeline actor this run", labels=["actor"]
        )
        alive = GaugeMetricFamily("rigd_actor_alive", "1 if the actor is alive", labels=["actor"])
        for name, actor in status["actors"].items():
            restarts.add_metric([name], actor.get("restarts", 0))
            alive.add_metric([name], 1.0 if actor.get("state") == "alive" else 0.0)
        yield from (restarts, alive)


def metrics_text(daemon: Daemon) -> tuple[bytes, str]:
    """The metrics in Prometheus's text format, and its content type."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DaemonCollector(daemon))
    return generate_latest(registry), CONTENT_TYPE_LATEST


def metric_samples(daemon: Daemon) -> Iterator[tuple[str, dict[str, str], float]]:
    """Every sample of ``/metrics`` now: (name as in the text format, labels, value).

    Counters are named as the text format names their samples (``_total``
    dropped: ``rigd_link_frames_written``, as in the family's name)."""
    for family in _DaemonCollector(daemon).collect():
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue
            name = sample.name.removesuffix("_total")
            yield name, dict(sample.labels), float(sample.value)
