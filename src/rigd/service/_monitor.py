"""The daemon's monitor: a thread that samples the running pipeline twice a second.

Each sample: the status snapshot the API serves (20 clients polling cost no
more than one), the progress the watchdog checks (frames moved), the disk
(free space against the data rate; a warning event once per run), and every
2 s the GPUs. The health check reads the latest sample.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from rigd.pipeline import Pipeline, Plan, RunState
from rigd.service._disk import DiskWatch
from rigd.service._events import now
from rigd.service._records import DaemonState, RunRecord
from rigd.service._snapshot import Snapshot, empty_snapshot, frames_written, snapshot_of

__all__ = ["MONITOR_S", "Monitor", "Watched"]

log = logging.getLogger(__name__)

MONITOR_S = 0.5
#: Links whose rates the health line names (the rest are counted).
_LINKS_SHOWN = 4
# GPU placements change only when actors start or end: sample them every 2 s.
_GPU_EVERY = 4
#: A running run's ``progress`` event, at most this often (seconds).
_PROGRESS_S = 1.0
#: A monitor that has not sampled for this long (seconds) is stuck: unhealthy.
_SAMPLE_LATE_S = 10 * MONITOR_S + 5

#: What the monitor looks at, read under the daemon's lock: (pipeline, plan, run, running).
Watched = tuple[Pipeline | None, Plan | None, RunRecord | None, bool]


class Monitor:
    """Samples what ``watched()`` returns every ``MONITOR_S`` seconds until ``close``.

    Args:
        watched: the daemon's pipeline, plan, run and whether it runs, now.
        disk: the data directory's watch.
        gpus: the GPUs and what is placed on each, now.
        publish: ``publish(kind, **data)``: the daemon's events.
        progress: ``progress(run_id)``: a running run's progress event's fields,
            published as ``progress`` once a second (``rigd.service._progress``).
    """

    def __init__(
        self,
        watched: Callable[[], Watched],
        disk: DiskWatch,
        gpus: Callable[[], list[dict[str, Any]]],
        publish: Callable[..., None],
        progress: Callable[[str], dict[str, Any]] | None = None,
    ) -> None:
        self._watched = watched
        self._disk_watch = disk
        self._gpus_now = gpus
        self._publish = publish
        self._progress = progress
        self._progress_sent = 0.0
        self._lock = threading.Lock()
        self.snapshot: Snapshot = empty_snapshot()
        self._snapshot_at = time.monotonic()
        self.gpus: list[dict[str, Any]] = []
        self._progress_at = time.monotonic()
        self._frames_seen = -1
        #: The data directory's free space against the running run's data rate.
        self.disk: dict[str, Any] = {}
        self._disk_warned: str | None = None
        self._skipped_run: str | None = None
        self._skipped_seen: dict[str, int] = {}
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rigd-daemon", daemon=True)
        self._thread.start()

    def run_started(self) -> None:
        """A run began: the watchdog counts from now."""
        with self._lock:
            self._progress_at = time.monotonic()
            self._frames_seen = -1

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        ticks = 0
        while not self._closing.wait(MONITOR_S):
            if ticks % _GPU_EVERY == 0:
                with contextlib.suppress(Exception):
                    self.gpus = self._gpus_now()
            ticks += 1
            self.sample()

    def sample(self) -> None:
        """One sample: the snapshot, the watchdog's progress, the disk."""
        pipeline, plan, record, running = self._watched()
        snapshot = empty_snapshot()
        if pipeline is not None:
            try:
                snapshot = snapshot_of(pipeline.status(), now())
            except Exception as exc:  # noqa: BLE001 - a sample may race the stop
                log.debug("status sample failed: %s", exc)
                snapshot = {**self.snapshot}
        snapshot["sampled_at"] = now()
        written = frames_written(snapshot)
        with self._lock:
            self.snapshot = snapshot
            self._snapshot_at = time.monotonic()
            if written != self._frames_seen:
                self._frames_seen = written
                self._progress_at = time.monotonic()
        run_id = record.run_id if record is not None else None
        if record is not None:
            self._note_skipped(snapshot, record.run_id)
        self.disk = self._disk_watch.sample(snapshot if running else None, plan, run_id)
        warning = self.disk.get("warning")
        if warning and record is not None and self._disk_warned != record.run_id:
            self._disk_warned = record.run_id
            log.warning("%s", warning)
            self._publish("disk", run_id=record.run_id, **self.disk)
        if (
            running
            and record is not None
            and self._progress is not None
            and time.monotonic() - self._progress_sent >= _PROGRESS_S
        ):
            self._progress_sent = time.monotonic()
            self._publish("progress", **self._progress(record.run_id))

    def _note_skipped(self, snapshot: Snapshot, run_id: str) -> None:
        """A ``drops`` event for each link whose source dropped frames (its
        ring full) since the last sample: a camera is never held back."""
        if self._skipped_run != run_id:
            self._skipped_run, self._skipped_seen = run_id, {}
        for link in snapshot["links"]:
            total = link.get("skipped", 0)
            seen = self._skipped_seen.get(link["ring"], 0)
            if total > seen:
                self._skipped_seen[link["ring"]] = total
                self._publish(
                    "drops",
                    run_id=run_id,
                    link=link["ring"],
                    reason="ring_full",
                    count=total - seen,
                    total=total,
                )

    @property
    def sampling(self) -> bool:
        """Whether the monitor sampled lately (its thread is not stuck)."""
        with self._lock:
            return time.monotonic() - self._snapshot_at <= _SAMPLE_LATE_S

    def health(
        self,
        state: DaemonState,
        run: RunRecord | None,
        failure: str | None,
        stall_s: float,
        *,
        failed_start: bool = False,
    ) -> tuple[bool, str] | None:
        """Unhealthy, or healthy while running or failed, with a line for systemd;
        None: no opinion (the daemon says ``<state> <pipeline>``).

        Unhealthy (``/v1/health`` answers 503 with the line): stuck (this
        monitor stopped sampling, or a run moved no frame for ``stall_s``), or
        ``failed`` for a cause that needs a person: the last run could not
        start (``failed_start``: a camera that does not open, a run file
        there already), or the disk filled. The daemon is healthy again once a
        run starts or a pipeline is loaded (``failure`` cleared). A run that
        failed while running (an actor gone for good) leaves it healthy, ready
        for the next run, with the run's failure in the line.
        """
        now_s = time.monotonic()
        with self._lock:
            snapshot = self.snapshot
            stalled = now_s - self._progress_at
            monitor_age = now_s - self._snapshot_at
        if monitor_age > _SAMPLE_LATE_S:
            return False, f"the monitor has not sampled for {monitor_age:.0f} s"
        # A disk warning is a warning: the daemon stays healthy (systemd's
        # watchdog would kill it, and the run with it), the line says it.
        warning = str(self.disk["warning"]) if self.disk.get("warning") else None
        if state == DaemonState.FAILED and failure:
            run_id = run.run_id if run is not None else "?"
            if "No space left" in failure:
                return False, failure
            if failed_start:
                return False, (
                    f"failed: {failure} (run {run_id}); fix the cause, then start a run "
                    "(POST /v1/runs) or load the pipeline again (PUT /v1/pipeline)"
                )
            return True, f"failed: the last run {run_id} failed: {failure}; ready for the next run"
        if state == DaemonState.RUNNING and run is not None and run.state == RunState.RUNNING:
            links = snapshot["links"]
            dropped = sum(r["dropped"] for link in links for r in link["readers"])
            # Each link's own rate: a sum over links counts a frame once per link.
            rates = [f"{link['ring']} {link['rate_hz']:.0f}/s" for link in links[:_LINKS_SHOWN]]
            if len(links) > _LINKS_SHOWN:
                rates.append(f"{len(links) - _LINKS_SHOWN} more link(s)")
            line = f"running {run.run_id}: {', '.join(rates) or 'no links'}; {dropped} dropped"
            if stalled > stall_s:
                return False, f"run {run.run_id} moved no frame for {stalled:.0f} s"
            return True, f"{line}; {warning}" if warning else line
        return (True, warning) if warning else None
