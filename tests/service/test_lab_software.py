"""Lab software against a real ``rigd serve``: GNU Octave running the example
unchanged, the Python ``Client`` with the progress events, and the self-test
(``GET /v1/selftest`` and ``rigd selftest``)."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import httpx
import pytest

from rigd.pipeline import plan_pipeline
from rigd.service import ApiError, Client
from rigd.service._progress import PROGRESS_METRICS
from rigd.service._selftest import space_check
from tests.helpers import wait_until
from tests.service.daemon import COUNTER, ROOT, Daemon, serving

pytestmark = pytest.mark.integration

EXAMPLE = ROOT / "examples" / "octave" / "rigd_acquire.m"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    directory = tmp_path_factory.mktemp("lab")
    pipelines = directory / "pipelines"
    pipelines.mkdir()
    (pipelines / "counter.yaml").write_text(COUNTER)
    with serving(directory, pipeline_dirs=[str(pipelines)]) as d:
        yield d


@pytest.fixture
def client(daemon: Daemon) -> Iterator[Client]:
    yield Client(daemon.url, daemon.token)
    if daemon.status()["state"] == "running":
        daemon.client.post("/v1/runs/current/stop")


@pytest.mark.skipif(
    shutil.which("octave") is None, reason="octave is not installed (Debian: octave)"
)
def test_octave_runs_the_example_unchanged_against_the_daemon(daemon: Daemon) -> None:
    env = {
        **os.environ,
        "RIGD_URL": daemon.url,
        "RIGD_TOKEN_FILE": str(daemon.token_file),
        "RIGD_PIPELINE": "counter",
        "RIGD_RUN_ID": "octave-1",
        "RIGD_FRAMES": "100",
    }
    done = subprocess.run(
        ["octave", "--no-gui", "--no-window-system", "--norc", str(EXAMPLE)],
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = daemon.client.get("/v1/runs/octave-1").json()
    assert run["state"] == "complete"
    assert f"run octave-1 complete: {run['files'][0]}" in done.stdout
    match = re.search(r"read (\d+) frames of (\d+)x(\d+) uint16, ids 0 to (\d+)", done.stdout)
    assert match, done.stdout
    frames = int(match.group(1))
    with h5py.File(run["files"][0], "r") as f:
        # Octave and MATLAB see HDF5's C order reversed: 48 x 32 x frames.
        assert (frames, int(match.group(3)), int(match.group(2))) == f["camera/frames"].shape
        assert int(match.group(4)) == f["camera/frame_id"][-1]
        assert f.attrs["animal"] == "mouse12"
        assert f.attrs["trial"] == 3  # a form's number stays a number
    assert frames == run["frames"]["camera"] >= 100


def test_the_client_follows_progress_events_named_as_the_metrics(
    daemon: Daemon, client: Client, tmp_path: Path
) -> None:
    pipeline = tmp_path / "counter.yaml"
    pipeline.write_text(COUNTER)
    assert client.load(pipeline)["name"] == "counter"
    events = client.events(timeout=30)
    assert next(events)["type"] == "status"
    run = client.start(run_id="progress-1", metadata={"animal": "m12"})
    assert run["state"] == "running"
    progress = []
    for event in events:
        if event["type"] != "progress":
            continue
        assert set(event["metrics"]) <= set(PROGRESS_METRICS)
        # The first may come before the rings exist: then it has no link yet.
        if "rigd_link_rate_hz" in event["metrics"]:
            progress.append(event)
            if len(progress) == 3:
                break
    events.close()
    for event in progress:
        assert event["run_id"] == "progress-1"
        (rate,) = event["metrics"]["rigd_link_rate_hz"]
        assert rate["labels"] == {"link": "camera.frames"}
        assert event["metrics"]["rigd_disk_free_bytes"][0]["value"] > 0
        assert event["metrics"]["rigd_run_bytes_written"][0]["value"] >= 0
        dropped = event["metrics"]["rigd_link_frames_dropped"]
        assert {s["labels"]["reader"] for s in dropped} == {"recorder.camera"}
    written = [e["metrics"]["rigd_link_frames_written"][0]["value"] for e in progress]
    assert written == sorted(written)
    assert written[-1] > written[0]
    # Once a second: never closer than the monitor allows.
    from datetime import datetime

    times = [datetime.fromisoformat(e["time"]).timestamp() for e in progress]
    assert all(b - a >= 0.9 for a, b in itertools.pairwise(times))
    # The same names as /metrics.
    metrics = daemon.client.get("/metrics").text
    for name in progress[-1]["metrics"]:
        assert f"\n{name}" in metrics or f"\n{name}_total" in metrics, name

    with pytest.raises(ApiError) as refused:
        client.start(run_id="progress-2")
    assert refused.value.status == 409
    stopped = client.stop()
    assert stopped["state"] == "complete"
    assert [r["run_id"] for r in client.runs()][-1] == "progress-1"
    assert client.run("progress-1")["metadata"] == {"animal": "m12"}

    with pytest.raises(ApiError) as unauthorized:
        Client(daemon.url, "wrong").status()
    assert unauthorized.value.status == 401


def test_a_wrong_pipeline_file_sent_by_the_client_is_named_in_the_errors(
    client: Client, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: wrong\nactors:\n  cam:\n    class: rigd.pipeline.NoSuchCamera\n")
    with pytest.raises(ApiError) as refused:
        client.load(wrong)
    assert refused.value.status == 422
    assert f"{wrong}, line 3" in str(refused.value)
    assert "<request body>" not in str(refused.value)


def test_the_event_schema_documents_the_progress_event(daemon: Daemon) -> None:
    schema = daemon.client.get("/openapi.json").json()
    events = schema["paths"]["/v1/events"]["get"]["responses"]["200"]["content"]
    progress = events["text/event-stream"]["schema"]
    assert {"run_id", "elapsed_s", "metrics"} <= set(progress["properties"])
    assert "/v1/selftest" in schema["paths"]


def test_the_daemon_selftest_runs_the_loaded_pipeline_and_leaves_a_run_alone(
    daemon: Daemon, client: Client
) -> None:
    client.load("counter")
    response = daemon.client.get("/v1/selftest", params={"seconds": 1})
    assert response.status_code == 200, response.text
    report = response.json()
    names = [c["name"] for c in report["checks"]]
    assert names == [
        "disk write",
        "free space",
        "/dev/shm",
        "CPU wake-up",
        "GPUs",
        "cameras",
        "clock sync",
        "run",
    ]
    run = report["checks"][-1]
    assert run["ok"] is True, run
    assert re.match(r"1 s: \d+ frames recorded, 0 dropped", run["figure"])
    assert report["passed"] == all(c["ok"] is not False for c in report["checks"])
    disk = report["checks"][0]
    assert re.search(r"[\d,]+ MB/s sustained", disk["figure"])
    assert daemon.status()["state"] == "loaded"
    assert not [p for p in daemon.data_dir.iterdir() if p.name.startswith(".rigd-selftest")]

    client.start(run_id="busy")
    busy = daemon.client.get("/v1/selftest", params={"seconds": 1}).json()
    assert busy["checks"][-1]["ok"] is None
    assert "left alone" in busy["checks"][-1]["figure"]
    assert daemon.status()["run"]["run_id"] == "busy"
    client.stop()

    for bad in ({"seconds": 99}, {"seconds": "x"}, {"minutes": 0}):
        refused = daemon.client.get("/v1/selftest", params=bad)
        assert refused.status_code == 422, refused.text


def test_rigd_selftest_prints_a_table_and_exits_with_its_verdict(tmp_path: Path) -> None:
    pipeline = tmp_path / "counter.yaml"
    pipeline.write_text(COUNTER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RIGD_ADDRESS": str(tmp_path / "none")}
    command = [sys.executable, "-m", "rigd", "selftest", str(pipeline), "--data-dir", "data"]
    # A planned run the disk cannot hold: that line fails, and the exit status says so.
    done = subprocess.run(
        [*command, "--seconds", "1", "--minutes", "1e6"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert re.search(r"^FAIL  free space .* needs", done.stdout, re.M), done.stdout
    assert "fix: free" in done.stdout
    assert re.search(r"^PASS  run +1 s: \d+ frames recorded, 0 dropped", done.stdout, re.M)
    assert done.stdout.rstrip().splitlines()[-1].startswith("FAILED: ")
    assert list((tmp_path / "data").iterdir()) == []  # the scratch run is gone

    missing = subprocess.run(
        [*command[:-3], str(tmp_path / "nothing.yaml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2
    assert "nothing.yaml" in missing.stderr


def test_rigd_run_with_a_console_serves_it_during_the_run_and_exits_when_it_ends(
    tmp_path: Path,
) -> None:
    pipeline = tmp_path / "short.yaml"
    pipeline.write_text(
        COUNTER.replace("name: counter", "name: short").replace(
            "fps: 400", "fps: 400, n_frames: 800"
        )
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RIGD_ADDRESS": str(tmp_path / "none")}
    command = [sys.executable, "-m", "rigd", "run", "--console", str(port), str(pipeline)]
    proc = subprocess.Popen(
        [*command, "--run-id", "foreground", "--meta", "animal=m12"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"console on (http://127.0.0.1:\d+)/console \(token (\S+)\)", line)
        assert match, line
        url, token = match.groups()
        headers = {"Authorization": f"Bearer {token}"}

        def running() -> bool:
            try:
                status = httpx.get(url + "/v1/status", headers=headers, timeout=5).json()
            except httpx.TransportError:
                return False
            return bool(status["run"]) and status["run"]["state"] in ("running", "complete")

        wait_until(running, 60, "the foreground run behind the console")
        assert "console.js" in httpx.get(url + "/console", timeout=5).text
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "run foreground complete" in out
    # No signal was sent: the log says why the daemon stopped.
    assert "the run ended (complete): stopping cleanly" in err
    assert "SIGINT" not in err
    (path,) = (tmp_path / "rigd-data").glob("*_short_foreground.h5")
    with h5py.File(path, "r") as f:
        assert f.attrs["animal"] == "m12"
        assert len(f["camera/frames"]) == 800
    # The journal and the run's log are beside the run file, as `rigd serve` keeps
    # them in its data directory; nothing lands in the current directory.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rigd-data", "short.yaml"]
    journal = (tmp_path / "rigd-data" / "runs.jsonl").read_text().splitlines()
    assert json.loads(journal[-1])["state"] == "complete"
    assert "camera" in (tmp_path / "rigd-data" / "foreground.log").read_text()


# 100,000,000 frames of 32x48 uint16: 307 GB, more than any test disk holds.
HUGE = COUNTER.replace("name: counter", "name: huge").replace(
    "fps: 400", "fps: 400, n_frames: 100000000"
)


def test_the_selftest_fails_the_free_space_of_a_planned_run_start_would_refuse(
    daemon: Daemon, tmp_path: Path
) -> None:
    # rigd selftest's check: the rule start applies, whatever --minutes says.
    (tmp_path / "huge.yaml").write_text(HUGE)
    check = space_check(tmp_path, 1.0, 1e-3, plan_pipeline(tmp_path / "huge.yaml"))
    assert check.ok is False
    assert "records 307,200.0 MB" in check.figure
    assert "record fewer frames" in check.fix
    # GET /v1/selftest: a report with that check failed (not a 507), and no run.
    daemon.load(HUGE)
    response = daemon.client.get("/v1/selftest", params={"seconds": 1})
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["passed"] is False
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["free space"]["ok"] is False
    assert "307,200.0 MB" in checks["free space"]["figure"]
    assert checks["run"]["ok"] is None
    assert "not run" in checks["run"]["figure"]
    assert daemon.status()["state"] == "loaded"
    assert daemon.client.post("/v1/runs", json={"run_id": "huge"}).status_code == 507
