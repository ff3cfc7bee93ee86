"""What health says in each failed state: a person is needed (503) after a run
that could not start or a full disk; a run that failed while running leaves
the daemon healthy, with the failure shown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rigd.pipeline import RunState
from rigd.service._disk import DiskWatch
from rigd.service._monitor import Monitor
from rigd.service._records import DaemonState, RunRecord


@pytest.fixture
def monitor(tmp_path: Path) -> Iterator[Monitor]:
    watch = Monitor(
        lambda: (None, None, None, False),
        DiskWatch(tmp_path, 10.0),
        list,
        lambda *args, **data: None,
    )
    yield watch
    watch.close()


RUN = RunRecord("m12-s3", "demo", RunState.FAILED, "2026-11-30T09:00:00.000+00:00", {})


def test_a_run_that_could_not_start_needs_a_person(monitor: Monitor) -> None:
    failure = "the run failed to start: the camera did not open"
    verdict = monitor.health(DaemonState.FAILED, RUN, failure, 5.0, failed_start=True)
    assert verdict is not None
    healthy, line = verdict
    assert healthy is False
    assert "the camera did not open (run m12-s3); fix the cause" in line


def test_a_full_disk_needs_a_person(monitor: Monitor) -> None:
    failure = "recording stopped: No space left on device; camera: frames 0..157 (158)"
    assert monitor.health(DaemonState.FAILED, RUN, failure, 5.0) == (False, failure)


def test_a_run_that_failed_while_running_leaves_the_daemon_healthy(monitor: Monitor) -> None:
    failure = "actor 'camera' died and will not be restarted"
    verdict = monitor.health(DaemonState.FAILED, RUN, failure, 5.0)
    assert verdict == (
        True,
        f"failed: the last run m12-s3 failed: {failure}; ready for the next run",
    )
    assert monitor.sampling


def test_a_running_run_names_each_links_rate_not_their_sum(monitor: Monitor) -> None:
    # Before: "401 frames/s on all links" for one 200 fps camera read twice.
    def link(ring: str, rate: float, dropped: int = 0) -> dict[str, object]:
        return {"ring": ring, "rate_hz": rate, "readers": [{"dropped": dropped}]}

    running = RunRecord("m12-s3", "demo", RunState.RUNNING, "2026-11-30T09:00:00.000+00:00", {})
    monitor.snapshot = {
        **monitor.snapshot,
        "links": [link("camera.frames", 200.4, 3), link("stats.result", 199.6)],
    }
    verdict = monitor.health(DaemonState.RUNNING, running, None, 5.0)
    assert verdict == (True, "running m12-s3: camera.frames 200/s, stats.result 200/s; 3 dropped")
    monitor.snapshot = {
        **monitor.snapshot,
        "links": [link(f"camera{k}.frames", 10.0) for k in range(6)],
    }
    verdict = monitor.health(DaemonState.RUNNING, running, None, 5.0)
    assert verdict is not None
    assert verdict[1].endswith("camera3.frames 10/s, 2 more link(s); 0 dropped")
