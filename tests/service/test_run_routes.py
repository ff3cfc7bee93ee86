"""Pause, resume and a run's logs over REST and the CLI, against a real ``rigd serve``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import wait_until
from tests.service.daemon import COUNTER, Daemon

pytestmark = pytest.mark.integration


def cli(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "rigd",
            *args,
            "--url",
            str(daemon.client.base_url),
            "--token-file",
            str(daemon.token_file),
        ],
        capture_output=True,
        text=True,
        env=daemon.env,
        check=False,
        timeout=120,
    )


def test_a_run_pauses_and_resumes_over_rest_and_the_cli_and_its_log_is_served(
    daemon: Daemon,
) -> None:
    daemon.load()
    refused = daemon.client.post("/v1/runs/current/pause")
    assert refused.status_code == 409
    assert refused.json()["detail"].startswith("no run is running (the daemon is loaded)")
    daemon.client.post("/v1/runs", json={"run_id": "r1"}).raise_for_status()
    daemon.wait_for_frames(40)

    paused = cli(daemon, "pause")
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith("run r1 paused (it resumes on its own after 600 s)")
    assert daemon.client.get("/v1/runs/r1").json()["state"] == "paused"
    again = daemon.client.post("/v1/runs/current/pause")
    assert again.status_code == 409
    assert again.json()["detail"] == (
        "only a running pipeline can pause; this one is paused; resume it first"
    )
    resumed = cli(daemon, "resume")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith("run r1 resumed after ")
    assert daemon.client.post("/v1/runs/current/resume").status_code == 409
    # A stop may begin from a pause.
    assert daemon.client.post("/v1/runs/current/pause").status_code == 200
    assert daemon.status()["state"] == "paused"
    stopped = daemon.client.post("/v1/runs/current/stop").json()
    assert stopped["state"] == "complete"
    assert daemon.status()["state"] == "loaded"

    logs = daemon.client.get("/v1/runs/r1/logs", params={"actor": "recorder"}).json()
    assert logs["path"] == str(daemon.data_dir / "r1.log")
    assert any(
        line.endswith(": paused (an event in the drop ledger; no frame lost)")
        for line in logs["lines"]
    )
    assert all(line.split(" ")[2] == "recorder" for line in logs["lines"])
    last = daemon.client.get("/v1/runs/current/logs", params={"tail": 1}).json()
    assert len(last["lines"]) == 1
    assert daemon.client.get("/v1/runs/nope/logs").status_code == 404
    assert daemon.client.get("/v1/runs/r1/logs", params={"tail": -1}).status_code == 422
    printed = cli(daemon, "logs", "r1", "--actor", "recorder", "--tail", "2")
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.splitlines() == logs["lines"][-2:]


def test_a_daemons_pause_ends_on_its_own_at_the_limit(
    daemon: Daemon,
) -> None:
    daemon.load(COUNTER + "run: {max_pause_s: 0.5}\n")
    daemon.client.post("/v1/runs", json={"run_id": "limited"}).raise_for_status()
    daemon.wait_for_frames(20)

    paused = daemon.client.post("/v1/runs/current/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["max_pause_s"] == 0.5
    # The limit resumes the run: the daemon and its record go back to running.
    wait_until(
        lambda: daemon.status()["state"] == "running",
        timeout=30,
        what="the pause's limit to resume the run",
    )
    assert daemon.client.get("/v1/runs/limited").json()["state"] == "running"
    stopped = daemon.client.post("/v1/runs/current/stop").json()
    assert stopped["state"] == "complete"
