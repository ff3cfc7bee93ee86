"""Run files against a real ``rigd serve``: a full disk (a real tmpfs) is warned of,
refused when planned and explained when it happens; a reader left open never
keeps a run from being sealed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import httpx
import pytest

from rigd.storage import inspect_run
from tests.helpers import small_tmpfs, wait_until
from tests.service.daemon import COUNTER, Daemon

pytestmark = pytest.mark.integration

# 6.5 MB/s: the 20 MB tmpfs fills in ~3 s, time for the monitor (every 0.5 s)
# to warn before the recorder fails (at once, on the first write it cannot make).
BIG = """\
name: big
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {{shape: [256, 256], dtype: uint16, fps: 50, pattern: counter{extra}}}
record: [camera.frames]
"""


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs as the data directory (needs root and mount)."""
    with small_tmpfs(tmp_path / "data") as data:
        yield data


def load(d: Daemon, text: str) -> None:
    response = d.client.put(
        "/v1/pipeline", content=text, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 200, response.text


def test_a_full_disk_is_warned_of_refused_when_planned_and_explained(
    tmp_path: Path, tmpfs: Path
) -> None:
    d = Daemon(tmp_path, data_dir=str(tmpfs), disk_warn_minutes=10)
    events: list[dict[str, Any]] = []
    try:
        # A run whose planned length cannot fit: refused before anything starts.
        load(d, BIG.format(extra=", n_frames: 2000"))
        response = d.client.post("/v1/runs", json={"run_id": "too-long"})
        assert response.status_code == 507, response.text
        assert "MB free" in response.json()["detail"]
        assert d.status()["state"] == "loaded"
        # A run of unknown length: warned of, then the disk fills.
        load(d, BIG.format(extra=""))
        stream = threading.Thread(target=_collect, args=(d, events), daemon=True)
        stream.start()
        run = d.client.post("/v1/runs", json={"run_id": "fills"})
        assert run.status_code == 201, run.text
        wait_until(
            lambda: any(e["type"] == "disk" for e in events), timeout=30, what="a disk warning"
        )
        warning = next(e for e in events if e["type"] == "disk")
        assert warning["minutes_left"] < 10
        metrics = d.client.get("/metrics").text
        assert "rigd_disk_warning 1.0" in metrics
        wait_until(lambda: d.status()["state"] == "failed", timeout=60, what="the run to fail")
        record = d.client.get("/v1/runs/fills").json()
        assert "No space left on device" in record["failure"]
        assert "keeps" in record["failure"]
        assert "No space left on device" in d.status()["failure"]
        health = httpx.get(d.url + "/v1/health", timeout=30)
        assert health.status_code == 503
        journal = (tmpfs / "runs.jsonl").read_text().splitlines()
        assert "No space left on device" in json.loads(journal[-1])["failure"]
        # Every frame that reached the disk stays readable (was: 1 of ~150),
        # and the run's record says which.
        (path,) = record["files"]
        kept = inspect_run(path)
        assert kept.run_state == "recovered"
        (camera,) = kept.streams
        assert camera.frames * 256 * 256 * 2 > 15e6, camera
        span = f"camera: frames {camera.first_frame_id}..{camera.last_frame_id} ({camera.frames})"
        assert span in record["failure"], record["failure"]
        assert span in d.status()["failure"]
        with h5py.File(path, "r") as f:
            ids = f["camera/frame_id"][:]
            frames = f["camera/frames"]
            assert all((frames[i] == ids[i] % 65536).all() for i in range(len(ids)))
        # And the run's end event carries it.
        wait_until(
            lambda: any(
                e["type"] == "run" and span in (e["run"].get("failure") or "") for e in events
            ),
            timeout=30,
            what="the run's end event",
        )
        assert d.terminate() == 0, d.output()
    finally:
        d.stop()


def _collect(d: Daemon, events: list[dict[str, Any]]) -> None:
    try:
        with d.client.stream("GET", "/v1/events", timeout=None) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    events.append(json.loads(line.removeprefix("data: ")))
    except httpx.HTTPError:
        return


def test_a_run_is_sealed_with_a_reader_attached(tmp_path: Path) -> None:
    d = Daemon(tmp_path)
    try:
        d.load(COUNTER)
        run = d.client.post("/v1/runs", json={"run_id": "viewed"}).json()
        d.wait_for_frames(50)
        with h5py.File(run["files"][0], "r", libver="latest", swmr=True) as viewer:
            assert "camera" in viewer
            stopped = d.client.post("/v1/runs/current/stop")
            assert stopped.status_code == 200, stopped.text
            assert stopped.json()["state"] == "complete", stopped.json()
        assert inspect_run(run["files"][0]).run_state == "complete"
        assert d.terminate() == 0, d.output()
    finally:
        d.stop()


RESTARTED = """\
name: big
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [256, 256], dtype: uint16, fps: 50, pattern: counter}
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    max_restarts: 3
record: [camera.frames]
"""


def test_a_full_disk_ends_the_run_at_once_even_with_restarts_to_spare(
    tmp_path: Path, tmpfs: Path
) -> None:
    # A restart cannot make room: the recorder is not restarted, the run fails
    # at the first write the disk refuses, and the file keeps what reached it.
    d = Daemon(tmp_path, data_dir=str(tmpfs), disk_warn_minutes=0)
    try:
        load(d, RESTARTED)
        run = d.client.post("/v1/runs", json={"run_id": "full"})
        assert run.status_code == 201, run.text
        wait_until(lambda: d.status()["state"] == "failed", timeout=60, what="the run to fail")
        record = d.client.get("/v1/runs/full").json()
        assert record["state"] == "failed"
        assert record["restarts"].get("recorder", 0) == 0, record
        assert "No space left on device" in record["failure"], record["failure"]
        assert "no restart can fix" in record["failure"], record["failure"]
        journal = [json.loads(line) for line in (tmpfs / "runs.jsonl").read_text().splitlines()]
        assert "No space left on device" in journal[-1]["failure"]
        assert "restarting it" not in d.output(), d.output()
        (path,) = record["files"]
        kept = inspect_run(path)
        (camera,) = kept.streams
        assert camera.frames * 256 * 256 * 2 > 15e6, camera
        assert not any(reason == "restart" for *_, reason in camera.ledger), camera.ledger
        span = f"camera: frames {camera.first_frame_id}..{camera.last_frame_id} ({camera.frames})"
        assert span in record["failure"], record["failure"]
        assert httpx.get(d.url + "/v1/health", timeout=30).status_code == 503
        assert d.terminate() == 0, d.output()
    finally:
        d.stop()
