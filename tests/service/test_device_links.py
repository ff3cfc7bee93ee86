"""A device source's links seen by the daemon's monitor: a GenICam camera
(Aravis's simulator over GVSP) in a real ``rigd serve``. Its links get their
shapes only when the run opens the device, yet status, metrics and health
must see them through the run (the watchdog would otherwise kill the daemon)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import wait_until
from tests.pipeline.camera import DEVICE_ID, Simulator, simulator
from tests.service.daemon import Daemon, serving

__all__ = ["simulator"]

pytestmark = pytest.mark.integration

FPS = 50
#: The daemon's watchdog: a run that moves no frame for this long is unhealthy.
STALL_S = 1.5

GENICAM = f"""\
name: genicam_watch
actors:
  - name: camera
    class: rigd.pipeline.GenICamCamera
    options: {{device_id: {DEVICE_ID}, pixel_format: Mono8, width: 64, height: 48,
               frame_rate: {FPS}}}
record: [camera.frames]
"""


def camera_link(daemon: Daemon) -> dict[str, Any]:
    links = {link["ring"]: link for link in daemon.status()["links"]}
    return links.get("camera.frames") or {"written": 0, "readers": []}


def test_a_genicam_run_shows_its_links_in_status_metrics_and_health(
    tmp_path: Path, simulator: Simulator
) -> None:
    with serving(tmp_path, watchdog_stall_s=STALL_S) as daemon:
        daemon.load(GENICAM)
        started = daemon.client.post("/v1/runs", json={})
        assert started.status_code == 201, started.text
        try:
            wait_until(
                lambda: camera_link(daemon)["written"] > 0,
                timeout=30,
                what="the camera's link in GET /v1/status with frames written",
            )
            begun = time.monotonic()
            # Past the watchdog's stall time (by frames counted, not a sleep).
            target = camera_link(daemon)["written"] + int(2 * STALL_S * FPS)
            wait_until(
                lambda: camera_link(daemon)["written"] >= target,
                timeout=30,
                what=f"{target} frames on camera.frames",
            )
            assert time.monotonic() - begun > STALL_S

            health = httpx.get(daemon.url + "/v1/health", timeout=10)
            assert health.status_code == 200, health.text
            detail = health.json()["detail"]
            assert detail.startswith(f"running {started.json()['run_id']}: "), detail
            match = re.search(r"camera\.frames (\d+)/s", detail)
            assert match, detail
            assert int(match.group(1)) > 0, detail

            metrics = daemon.client.get("/metrics").text
            assert 'rigd_link_frames_written_total{link="camera.frames"}' in metrics, metrics
            assert 'rigd_link_rate_hz{link="camera.frames"}' in metrics, metrics
            readers = camera_link(daemon)["readers"]
            assert [r["input"] for r in readers] == ["recorder.camera"], readers
        finally:
            stopped = daemon.client.post("/v1/runs/current/stop")
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["state"] == "complete"
