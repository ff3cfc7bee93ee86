"""A camera's drops on a full ring, as lab software sees them from a real
``rigd serve``: in the status, the metrics, the event stream and the run."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from rigd.storage import inspect_run
from tests.helpers import wait_until
from tests.service.daemon import Daemon

pytestmark = pytest.mark.integration

# A lossless viewer at 50 frames/s, 4 slots, behind a 400 fps camera.
HELD = """\
name: held
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [16, 16], dtype: uint16, fps: 400, pattern: counter}
  - name: viewer
    class: tests.pipeline.actors.SlowViewer
    options: {delay: 0.02}
links:
  - {link: camera.frames -> viewer.frames, slots: 4}
record: [camera.frames]
"""


def _collect(d: Daemon, events: list[dict[str, Any]]) -> None:
    try:
        with d.client.stream("GET", "/v1/events", timeout=None) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))
    except httpx.HTTPError:
        return


def test_a_cameras_drops_are_in_the_status_metrics_events_and_the_run(tmp_path: Path) -> None:
    d = Daemon(tmp_path, allowed_modules=["rigd", "tests.pipeline"])
    events: list[dict[str, Any]] = []
    try:
        d.load(HELD)
        threading.Thread(target=_collect, args=(d, events), daemon=True).start()
        wait_until(lambda: any(e["type"] == "status" for e in events), 30, "the event stream")
        assert d.client.post("/v1/runs", json={"run_id": "held"}).status_code == 201

        def camera_link() -> dict[str, Any]:
            links = [link for link in d.status()["links"] if link["ring"] == "camera.frames"]
            return links[0] if links else {"skipped": 0}

        wait_until(lambda: camera_link()["skipped"] > 20, 30, "the camera to drop frames")
        assert camera_link()["dropped_by_reason"]["ring_full"] > 20
        wait_until(lambda: any(e["type"] == "drops" for e in events), 30, "a drops event")
        drop = next(e for e in events if e["type"] == "drops")
        assert drop["link"] == "camera.frames"
        assert drop["reason"] == "ring_full"
        assert drop["run_id"] == "held"
        assert 0 < drop["count"] <= drop["total"]
        metrics = d.client.get("/metrics").text
        assert 'rigd_link_frames_skipped_total{link="camera.frames"}' in metrics
        stopped = d.client.post("/v1/runs/current/stop").json()
        assert stopped["state"] == "complete"
        (path,) = stopped["files"]
        (camera,) = inspect_run(path).streams
        assert stopped["dropped"]["camera"] == camera.dropped > 0
        assert {reason for _, _, reason in camera.ledger} == {"ring_full"}
        assert d.terminate() == 0, d.output()
    finally:
        d.stop()
