"""Soft triggers over REST and the CLI, against a real ``rigd serve``."""

from __future__ import annotations

import subprocess
import sys

import h5py
import pytest

from tests.helpers import wait_until
from tests.service.daemon import Daemon

pytestmark = pytest.mark.integration

TRIGGERED = """\
name: triggered
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [32, 48], dtype: uint16, fps: 200, pattern: counter}
  - name: recorder
    class: rigd.pipeline.TriggeredRecorder
    options: {pre: 10, post: 10}
links:
  - {link: camera.frames -> recorder.camera, policy: latest, slots: 32}
"""


def test_soft_triggers_over_rest_and_the_cli_record_events(daemon: Daemon) -> None:
    daemon.load(TRIGGERED)
    response = daemon.client.post("/v1/runs/current/trigger", json={"label": "early"})
    assert response.status_code == 409  # no run yet
    assert "a trigger needs one" in response.json()["detail"]
    run = daemon.client.post("/v1/runs", json={"run_id": "t1"}).json()
    (path,) = run["files"]

    def frames_sent() -> int:
        links = daemon.status()["links"]
        return int(links[0]["written"]) if links else 0

    wait_until(lambda: frames_sent() >= 40, timeout=30, what="frames")
    response = daemon.client.post("/v1/runs/current/trigger", json={"label": "air puff"})
    assert response.status_code == 200, response.text
    assert response.json() == {"label": "air puff", "recorders": {"recorder": True}}
    # What MATLAB's and Octave's webwrite send: a form.
    sent = frames_sent()
    wait_until(lambda: frames_sent() >= sent + 60, timeout=30, what="frames between triggers")
    response = daemon.client.post("/v1/runs/current/trigger", data={"label": "tone"})
    assert response.status_code == 200, response.text
    # A value of 0 is never a trigger (areaDetector's soft trigger fired on 0).
    for body in (
        {"trigger": 0},
        {"label": 0},
        {"label": "x\x00"},
        {"label": "delete\x7f"},
        {"label": "ab" + "\u2603" * 30},  # 32 characters, but 92 bytes
    ):
        response = daemon.client.post("/v1/runs/current/trigger", json=body)
        assert response.status_code == 422, body
        assert "Traceback" not in response.text
    sent = frames_sent()
    wait_until(lambda: frames_sent() >= sent + 60, timeout=30, what="frames after the triggers")
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "rigd",
            "trigger",
            "--label",
            "from the CLI",
            "--url",
            str(daemon.client.base_url),
            "--token-file",
            str(daemon.token_file),
        ],
        capture_output=True,
        text=True,
        env=daemon.env,
        check=False,
        timeout=60,
    )
    assert cli.returncode == 0, cli.stderr
    assert "recorder: triggered" in cli.stdout
    sent = frames_sent()
    wait_until(lambda: frames_sent() >= sent + 40, timeout=30, what="the last event's frames")
    stopped = daemon.client.post("/v1/runs/current/stop").json()
    assert stopped["state"] == "complete"
    with h5py.File(path, "r") as f:
        events = f["events"][:]
        ids = f["camera/frame_id"][:]
    assert [bytes(e) for e in events["label"]] == [b"air puff", b"tone", b"from the CLI"]
    assert list(events["camera_rows"]) == [20, 20, 20]
    assert len(set(ids)) == len(ids) == 60
