"""Starting a run against a real ``rigd serve``: a start that fails makes the
daemon unhealthy until a run starts fine, and places that changed since the
pipeline was loaded are checked again (and refused) when a run starts."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.helpers import wait_until
from tests.service.daemon import serving
from tests.service.test_daemon import NotifySocket

pytestmark = pytest.mark.integration

#: Every run writes the same file name: a second run cannot start while the first's is there.
FIXED = """\
name: fixed
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [8, 8], fps: 200, n_frames: 10}
recording: {template: fixed.h5}
record: [camera.frames]
"""


def health(url: str) -> httpx.Response:
    return httpx.get(url + "/v1/health", timeout=30)


def test_a_failed_start_is_unhealthy_until_a_run_starts_fine_and_places_are_checked_again(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
    with contextlib.closing(notify), serving(tmp_path, env=env) as d:
        d.load(FIXED)
        first = d.client.post("/v1/runs", json={"run_id": "first"})
        assert first.status_code == 201, first.text
        wait_until(lambda: d.status()["state"] == "loaded", timeout=60, what="the run to end")
        assert health(d.url).status_code == 200
        # The next run cannot start (its file exists): failed, and unhealthy with why.
        second = d.client.post("/v1/runs", json={"run_id": "second"})
        assert second.status_code == 409, second.text
        assert d.status()["state"] == "failed"
        answer = health(d.url)
        assert answer.status_code == 503, answer.text
        body = answer.json()
        assert body["healthy"] is False
        assert body["state"] == "failed"
        assert "exists already" in body["detail"]
        assert "(run second)" in body["detail"]
        assert "fix the cause" in body["detail"]
        # systemd's status says it, and its watchdog is still fed: restarting the
        # daemon would fix nothing and hide the cause.
        wait_until(
            lambda: any("(run second)" in s for s in notify.said("STATUS=failed")),
            timeout=30,
            what="systemd's status to say why",
        )
        fed = len(notify.said("WATCHDOG=1"))
        wait_until(lambda: len(notify.said("WATCHDOG=1")) > fed + 1, timeout=30, what="WATCHDOG=1")
        assert "not feeding the watchdog" not in d.output()
        # A person removes the cause; the next run starts, and the daemon is healthy.
        (d.data_dir / "rigd-data" / "fixed.h5").unlink()
        third = d.client.post("/v1/runs", json={"run_id": "third"})
        assert third.status_code == 201, third.text
        assert health(d.url).status_code == 200
        wait_until(lambda: d.status()["state"] == "loaded", timeout=60, what="the run to end")
        assert health(d.url).json()["healthy"] is True
        # -- a place changed since the load --
        recordings = d.data_dir / "rigd-data"
        shutil.rmtree(recordings)
        # Loaded with rigd-data inside; then a symlink out is put in its place.
        recordings.symlink_to(outside)
        refused = d.client.post("/v1/runs", json={"run_id": "escape"})
        assert refused.status_code == 409, refused.text
        detail = refused.json()["detail"]
        assert "'directory'" in detail
        assert "outside the service's data directory" in detail
        assert "recorder" in detail
        assert "start the run again" in detail
        assert os.listdir(outside) == []
        # Nothing changed: the daemon is as it was, the id was not used, health is fine.
        assert d.status()["state"] == "loaded"
        assert d.client.get("/v1/runs/escape").status_code == 404
        assert health(d.url).status_code == 200
        # A file where the directory should be.
        recordings.unlink()
        recordings.write_text("not a directory")
        refused = d.client.post("/v1/runs", json={"run_id": "escape"})
        assert refused.status_code == 409, refused.text
        assert "is not a directory" in refused.json()["detail"]
        assert d.status()["state"] == "loaded"
        # Put right, the same id starts and records inside.
        recordings.unlink()
        started = d.client.post("/v1/runs", json={"run_id": "escape"})
        assert started.status_code == 201, started.text
        wait_until(lambda: d.status()["state"] == "loaded", timeout=60, what="the run to end")
        assert (recordings / "fixed.h5").is_file()
        assert os.listdir(outside) == []
