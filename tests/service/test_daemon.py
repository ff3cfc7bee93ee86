"""The daemon, as lab software meets it: a real ``rigd serve`` on a loopback port,
driven over HTTP, stopped with real signals."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import h5py
import httpx
import numpy as np
import pytest

from rigd.storage import inspect_run
from tests.helpers import wait_until
from tests.service.daemon import COUNTER, ROOT, Daemon, serving

pytestmark = pytest.mark.integration


def read_counter(path: str) -> np.ndarray:
    """The recorded camera's frames, checked to be the counter pattern; its frame ids."""
    with h5py.File(path, "r") as f:
        frames = f["camera/frames"][:]
        ids = f["camera/frame_id"][:]
    assert len(frames) == len(ids) > 0
    expected = (ids % 65536).astype(np.uint16)
    assert np.array_equal(frames.reshape(len(frames), -1).min(axis=1), expected)
    assert np.array_equal(frames.reshape(len(frames), -1).max(axis=1), expected)
    return ids


# -- the happy path -----------------------------------------------------------------------


def test_load_start_stop_and_read_the_run_file(daemon: Daemon) -> None:
    assert daemon.status()["state"] == "idle"
    info = daemon.load()
    assert info["name"] == "counter"
    assert daemon.status()["state"] == "loaded"

    response = daemon.client.post(
        "/v1/runs", json={"run_id": "mouse12-s3", "metadata": {"animal": "mouse12", "trial": 3}}
    )
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["run_id"] == "mouse12-s3"
    assert run["state"] == "running"
    (path,) = run["files"]
    assert Path(path).is_relative_to(daemon.data_dir)

    daemon.wait_for_frames(200)
    status = daemon.status()
    assert status["state"] == "running"
    assert status["run"]["run_id"] == "mouse12-s3"
    assert status["actors"]["camera"]["state"] == "alive"
    assert status["actors"]["recorder"]["restarts"] == 0
    (link,) = status["links"]
    assert link["ring"] == "camera.frames"
    assert link["readers"][0]["input"] == "recorder.camera"
    assert 0.0 <= link["fill"] <= 1.0

    response = daemon.client.post("/v1/runs/current/stop")
    assert response.status_code == 200, response.text
    stopped = response.json()
    assert stopped["state"] == "complete"
    assert stopped["dropped"] == {"camera": 0}
    assert stopped["frames"]["camera"] >= 200
    assert daemon.status()["state"] == "loaded"

    ids = read_counter(path)
    assert len(ids) == stopped["frames"]["camera"]
    assert np.array_equal(ids, np.arange(len(ids)))  # every frame, in order
    summary = inspect_run(path)
    assert summary.run_state == "complete"
    assert summary.metadata["animal"] == "mouse12"
    assert summary.metadata["trial"] == 3

    assert daemon.client.get("/v1/runs/mouse12-s3").json() == stopped
    assert [r["run_id"] for r in daemon.client.get("/v1/runs").json()] == ["mouse12-s3"]


def test_a_run_whose_sources_end_finishes_on_its_own_and_a_second_run_follows(
    daemon: Daemon,
) -> None:
    daemon.load(COUNTER.replace("pattern: counter", "pattern: counter, n_frames: 150"))
    first = daemon.client.post("/v1/runs", json={}).json()
    wait_until(
        lambda: daemon.client.get(f"/v1/runs/{first['run_id']}").json()["state"] == "complete",
        timeout=30,
        what="the run to end when its camera does",
    )
    assert daemon.status()["state"] == "loaded"
    assert len(read_counter(first["files"][0])) == 150
    second = daemon.client.post("/v1/runs")
    assert second.status_code == 201, second.text
    assert second.json()["run_id"] != first["run_id"]
    assert second.json()["files"] != first["files"]


def test_a_run_whose_actor_gives_up_is_failed_in_its_record_and_its_file(
    tmp_path: Path,
) -> None:
    # Was: the record said failed, the file sealed complete with no failure.
    with serving(tmp_path, allowed_modules=["rigd", "tests.pipeline"]) as daemon:
        flaky = "  - {name: flaky, class: tests.pipeline.actors.Flaky}\nrecord:"
        daemon.load(COUNTER.replace("record:", flaky))
        run = daemon.client.post("/v1/runs", json={"run_id": "crash1"})
        assert run.status_code == 201, run.text
        wait_until(
            lambda: daemon.client.get("/v1/runs/crash1").json()["state"] == "failed",
            timeout=60,
            what="the run to fail",
        )
        record = daemon.client.get("/v1/runs/crash1").json()
    assert "the device is unplugged" in record["failure"], record
    (path,) = record["files"]
    summary = inspect_run(path)
    assert (summary.run_state, summary.failure) == ("failed", record["failure"])


def test_the_same_run_id_twice_starts_one_run(daemon: Daemon) -> None:
    daemon.load()
    first = daemon.client.post("/v1/runs", json={"run_id": "r1"})
    again = daemon.client.post("/v1/runs", json={"run_id": "r1"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["files"] == first.json()["files"]
    daemon.client.post("/v1/runs/current/stop")
    # A late retry never starts another, nor pretends to have recorded: 409.
    late = daemon.client.post("/v1/runs", json={"run_id": "r1"})
    assert late.status_code == 409
    assert "new id" in late.json()["detail"]
    assert len(daemon.client.get("/v1/runs").json()) == 1


# -- refusals -----------------------------------------------------------------------------


GUARDED = [
    ("GET", "/v1/status"),
    ("GET", "/v1/pipeline"),
    ("PUT", "/v1/pipeline"),
    ("POST", "/v1/runs"),
    ("POST", "/v1/runs/current/stop"),
    ("GET", "/v1/runs"),
    ("GET", "/v1/runs/x"),
    ("GET", "/v1/actors"),
    ("GET", "/v1/gpus"),
    ("GET", "/v1/cameras"),
    ("GET", "/v1/events"),
    ("GET", "/metrics"),
]


def test_every_endpoint_but_health_needs_the_token(daemon: Daemon) -> None:
    mode = stat.S_IMODE(daemon.token_file.stat().st_mode)
    assert mode == 0o600
    assert len(daemon.token) >= 32
    for headers in ({}, {"Authorization": f"Bearer {daemon.token}x"}, {"Authorization": "Basic x"}):
        for method, path in GUARDED:
            response = httpx.request(method, daemon.url + path, headers=headers, timeout=30)
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert "token" in response.json()["detail"]
    health = httpx.get(daemon.url + "/v1/health", timeout=30)
    assert health.status_code == 200
    assert health.json()["healthy"] is True
    assert daemon.status()["state"] == "idle"  # nothing the refused requests asked happened


def test_illegal_transitions_get_409_and_never_disturb_a_run(daemon: Daemon) -> None:
    response = daemon.client.post("/v1/runs")
    assert response.status_code == 409
    assert "PUT /v1/pipeline" in response.json()["detail"]
    response = daemon.client.post("/v1/runs/current/stop")
    assert response.status_code == 409
    assert "POST /v1/runs" in response.json()["detail"]

    daemon.load()
    run = daemon.client.post("/v1/runs", json={"run_id": "keep"}).json()
    daemon.wait_for_frames(50)
    for method, path, kwargs in [
        ("POST", "/v1/runs", {"json": {}}),
        ("POST", "/v1/runs", {"json": {"run_id": "other"}}),
        ("PUT", "/v1/pipeline", {"json": {"file": "demo"}}),
    ]:
        response = daemon.client.request(method, path, **kwargs)
        assert response.status_code == 409, response.text
        assert "stop it first" in response.json()["detail"]
        assert response.json()["state"] == "running"
    assert daemon.status()["run"]["run_id"] == "keep"
    stopped = daemon.client.post("/v1/runs/current/stop").json()
    assert stopped["dropped"] == {"camera": 0}
    ids = read_counter(run["files"][0])
    assert np.array_equal(ids, np.arange(len(ids)))


def test_two_starts_at_once_start_one_run(daemon: Daemon) -> None:
    daemon.load()
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def start() -> None:
        barrier.wait()
        codes.append(daemon.client.post("/v1/runs", json={}).status_code)

    threads = [threading.Thread(target=start) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(codes) == [201, 409]
    assert len(daemon.client.get("/v1/runs").json()) == 1
    assert daemon.client.post("/v1/runs/current/stop").json()["state"] == "complete"


BAD_PIPELINES = [
    ("name: x\nactors: [\n", "not valid YAML"),
    ("name: x\nactors:\n  - {name: a, class: os.system}\n", "does not allow"),
    ("name: x\nactors:\n  - {name: a, class: rigd.pipeline.Nothing}\n", "cannot be imported"),
    (
        "name: x\nactors:\n  - {name: a, class: rigd.pipeline.SimulatedCamera, colour: 1}\n",
        "colour",
    ),
    (COUNTER + "recording: {directory: /etc}\n", "outside the service's data directory"),
    (COUNTER + "recording: {directory: ../../elsewhere}\n", "outside the service's data directory"),
]


@pytest.mark.parametrize(("text", "problem"), BAD_PIPELINES)
def test_a_bad_pipeline_is_refused_with_its_line_and_the_loaded_one_stays(
    tmp_path: Path, text: str, problem: str
) -> None:
    d = Daemon(tmp_path)
    try:
        d.load()
        response = d.client.put(
            "/v1/pipeline", content=text, headers={"Content-Type": "application/yaml"}
        )
        assert response.status_code == 422, response.text
        assert problem in response.json()["detail"]
        assert "<request body>" in response.json()["detail"]
        assert "line" in response.json()["detail"] or "YAML" in response.json()["detail"]
        status = d.status()
        assert (status["state"], status["pipeline"]) == ("loaded", "counter")
        assert d.terminate() == 0
    finally:
        d.stop()
    assert not (tmp_path / "data" / "etc").exists()


def test_invalid_bodies_get_422_naming_the_field(daemon: Daemon) -> None:
    daemon.load()
    cases = [
        ({"run_id": 5}, "run_id"),
        ({"run_id": "../../etc/passwd"}, "run_id"),
        ({"metadata": "not a mapping"}, "metadata"),
        ({"colour": "red"}, "colour"),
        ({"metadata": {"run_id": "x"}}, "metadata.run_id"),
    ]
    for body, field in cases:
        response = daemon.client.post("/v1/runs", json=body)
        assert response.status_code == 422, (body, response.text)
        assert field in response.json()["detail"], response.json()
    response = daemon.client.put("/v1/pipeline", json={"file": "demo", "text": "x"})
    assert response.status_code == 422
    assert "exactly one" in response.json()["detail"]
    response = daemon.client.put("/v1/pipeline", json={"file": "../secret"})
    assert response.status_code == 404
    assert "file name in a pipeline directory" in response.json()["detail"]
    response = daemon.client.put("/v1/pipeline", json={"file": "no-such-pipeline"})
    assert response.status_code == 404
    assert "pipeline_dirs" in response.json()["detail"]
    response = daemon.client.put(
        "/v1/pipeline", content=b"<x/>", headers={"Content-Type": "text/xml"}
    )
    assert response.status_code == 415
    assert daemon.client.get("/v1/runs/nope").status_code == 404
    assert daemon.status()["state"] == "loaded"
    assert daemon.client.get("/v1/runs").json() == []


def test_an_oversized_body_and_a_client_gone_mid_request_change_nothing(tmp_path: Path) -> None:
    d = Daemon(tmp_path, max_body_bytes=4096)
    try:
        d.load()
        run = d.client.post("/v1/runs", json={}).json()
        d.wait_for_frames(20)
        response = d.client.put(
            "/v1/pipeline", content="#" * 10_000, headers={"Content-Type": "application/yaml"}
        )
        assert response.status_code == 413
        assert "4096 bytes" in response.json()["detail"]
        # A client that promises a body, sends half and hangs up.
        host, port = d.url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {d.token}\r\nContent-Length: 400\r\n\r\n".encode()
                + b'{"run_id": "ha'
            )
        status = d.status()
        assert status["state"] == "running"
        assert status["run"]["run_id"] == run["run_id"]
        stopped = d.client.post("/v1/runs/current/stop").json()
        assert stopped["dropped"] == {"camera": 0}
        assert [r["run_id"] for r in d.client.get("/v1/runs").json()] == [run["run_id"]]
        assert d.terminate() == 0
    finally:
        d.stop()


# -- signals, events, metrics -----------------------------------------------------------------


def test_sigterm_during_a_run_seals_the_file_and_exits_0(tmp_path: Path) -> None:
    d = Daemon(tmp_path)
    try:
        d.load()
        run = d.client.post("/v1/runs", json={"run_id": "term"}).json()
        d.wait_for_frames(100)
        assert d.terminate(timeout=60) == 0, d.output()
        d.assert_nothing_left()
    finally:
        d.stop()
    summary = inspect_run(run["files"][0])
    assert summary.run_state == "complete"
    ids = read_counter(run["files"][0])
    assert len(ids) >= 100
    assert np.array_equal(ids, np.arange(len(ids)))
    journal = [json.loads(line) for line in (d.data_dir / "runs.jsonl").read_text().splitlines()]
    assert journal[-1]["run_id"] == "term"
    assert journal[-1]["state"] == "complete"


def read_events(response: httpx.Response, out: list[dict[str, Any]], done: threading.Event) -> None:
    kind = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            event = json.loads(line.removeprefix("data: "))
            assert event["type"] == kind
            out.append(event)
            if event["type"] == "run" and event["run"]["state"] == "complete":
                done.set()
                return


def test_the_event_stream_tells_each_state_change(daemon: Daemon) -> None:
    events: list[dict[str, Any]] = []
    done = threading.Event()
    with daemon.client.stream("GET", "/v1/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = threading.Thread(target=read_events, args=(response, events, done), daemon=True)
        reader.start()
        wait_until(lambda: bool(events), timeout=30, what="the first event")
        daemon.load()
        daemon.client.post("/v1/runs", json={"run_id": "ev"})
        daemon.client.post("/v1/runs/current/stop")
        assert done.wait(timeout=30)
    assert events[0]["type"] == "status"
    assert events[0]["state"] == "idle"
    states = [(e["previous"], e["state"]) for e in events if e["type"] == "state"]
    assert states == [
        ("idle", "loaded"),
        ("loaded", "running"),
        ("running", "stopping"),
        ("stopping", "loaded"),
    ]
    runs = [(e["run"]["run_id"], e["run"]["state"]) for e in events if e["type"] == "run"]
    assert runs == [("ev", "running"), ("ev", "complete")]


def test_metrics_show_state_frames_and_drops(daemon: Daemon) -> None:
    daemon.load()
    daemon.client.post("/v1/runs", json={})
    daemon.wait_for_frames(50)
    response = daemon.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'rigd_state{state="running"} 1.0' in text
    assert 'rigd_state{state="idle"} 0.0' in text
    assert "rigd_healthy 1.0" in text
    written = [
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith('rigd_link_frames_written_total{link="camera.frames"}')
    ]
    assert written
    assert written[0] >= 50
    assert (
        'rigd_link_frames_dropped_total{link="camera.frames",reader="recorder.camera"} 0.0' in text
    )
    assert 'rigd_actor_alive{actor="camera"} 1.0' in text
    daemon.client.post("/v1/runs/current/stop")


# -- scripts, CLI, start-up -------------------------------------------------------------------

CREATE_DETACHED = """
import rigd

@rigd.remote
class Counter:
    def __init__(self):
        self.n = 0
    def incr(self):
        self.n += 1
        return self.n

rigd.init(address="auto", namespace="lab")
counter = Counter.options(name="counter", lifetime="detached").remote()
assert rigd.get(counter.incr.remote()) == 1
temporary = Counter.options(name="temporary").remote()
assert rigd.get(temporary.incr.remote()) == 1
print("created")
"""

USE_DETACHED = """
import rigd
rigd.init(address="auto", namespace="lab")
print(rigd.get(rigd.get_actor("counter").incr.remote()))
try:
    rigd.get_actor("temporary")
except ValueError:
    print("temporary gone")
rigd.shutdown()
"""


def run_script(d: Daemon, source: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        env=d.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_a_detached_actor_outlives_the_script_that_created_it(daemon: Daemon) -> None:
    assert run_script(daemon, CREATE_DETACHED).strip() == "created"
    assert run_script(daemon, USE_DETACHED).split() == ["2", "temporary", "gone"]
    actors = daemon.client.get("/v1/actors").json()
    (counter,) = [a for a in actors if a["name"] == "counter"]
    assert counter["state"] == "alive"
    assert counter["detached"] is True
    assert counter["namespace"] == "lab"
    # The daemon ends it with itself.


def test_init_auto_without_a_daemon_says_how_to_start_one(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RIGD_ADDRESS": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", "import rigd; rigd.init(address='auto')"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "ConnectionError" in result.stderr
    assert "rigd serve" in result.stderr


def rigd_cli(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rigd", *args],
        env=d.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cli_client_loads_starts_stops_and_reports(daemon: Daemon) -> None:
    pipeline = daemon.directory / "counter.yaml"
    pipeline.write_text(COUNTER)
    result = rigd_cli(daemon, "load", str(pipeline))
    assert result.returncode == 0, result.stderr
    assert "loaded pipeline counter" in result.stdout
    result = rigd_cli(daemon, "start", "--run-id", "cli", "--meta", "animal=m7")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("run cli running")
    daemon.wait_for_frames(50)
    result = rigd_cli(daemon, "status")
    assert result.returncode == 0, result.stderr
    assert "state: running" in result.stdout
    assert "link camera.frames:" in result.stdout
    result = rigd_cli(daemon, "stop")
    assert result.returncode == 0, result.stderr
    assert "run cli complete" in result.stdout
    assert "camera:" in result.stdout
    assert "0 dropped" in result.stdout
    result = rigd_cli(daemon, "stop")
    assert result.returncode == 1
    assert "409" in result.stderr
    assert "no run is running" in result.stderr
    assert inspect_run(daemon.client.get("/v1/runs/cli").json()["files"][0]).metadata == {
        "animal": "m7"
    }
    result = rigd_cli(daemon, "load", "demo")  # a bundled pipeline, by name
    assert result.returncode == 0, result.stderr


def test_the_cli_client_without_a_daemon_says_so(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RIGD_ADDRESS": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "rigd", "status"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no rigd daemon is running" in result.stderr


def test_a_bad_service_config_exits_2_naming_the_key(tmp_path: Path) -> None:
    config = tmp_path / "service.yaml"
    config.write_text("port: 8470\nbnid: 0.0.0.0\n")
    result = subprocess.run(
        [sys.executable, "-m", "rigd", "serve", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"{config}, line 2, bnid: unknown key 'bnid'" in result.stderr


def test_a_token_file_others_may_read_is_refused(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("secret-token-secret-token-secret-token\n")
    token.chmod(0o644)
    config = tmp_path / "service.yaml"
    config.write_text(f"port: 0\ntoken_file: {token}\ndata_dir: {tmp_path / 'data'}\n")
    result = subprocess.run(
        [sys.executable, "-m", "rigd", "serve", "--config", str(config)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "RIGD_ADDRESS": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"chmod 600 {token}" in result.stderr


def test_start_up_repairs_what_a_crashed_daemon_left(tmp_path: Path) -> None:
    data = tmp_path / "data" / "rigd-data"
    data.mkdir(parents=True)
    unsealed = data / "crashed.h5"
    with subprocess.Popen(
        [sys.executable, "-m", "tests.storage.recording_child", "flush-then-hang", str(unsealed)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "flushed 40"
        proc.kill()
    assert inspect_run(unsealed).run_state == "recording"
    # A ring left by a dead daemon: its owner pid (the child's) is gone.
    stale = f"/dev/shm/rigd-{proc.pid}-ring-counter-abc-camera.frames"
    Path(stale).write_bytes(b"\0" * 4096)

    d = Daemon(tmp_path)
    try:
        assert not Path(stale).exists()
        assert inspect_run(unsealed).run_state == "recovered"
        assert "repaired" in d.output()
        assert d.terminate() == 0
    finally:
        d.stop()


class NotifySocket:
    """systemd's side of sd_notify: a datagram socket collecting what the daemon says."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except OSError:
                return
            with self._lock:
                self.messages.extend(data.decode().split("\n"))

    def said(self, prefix: str) -> list[str]:
        with self._lock:
            return [m for m in self.messages if m.startswith(prefix)]

    def close(self) -> None:
        self.sock.close()


def test_systemd_hears_ready_status_and_the_watchdog_only_while_healthy(tmp_path: Path) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    env = {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "1000000"}
    d = Daemon(tmp_path, env=env, watchdog_stall_s=0.5)
    try:
        wait_until(lambda: notify.said("READY=1"), timeout=30, what="READY=1")
        assert d._answers()  # ready means it serves
        wait_until(lambda: notify.said("WATCHDOG=1"), timeout=30, what="WATCHDOG=1")
        # A camera at 0.4 fps: between frames the run moves nothing for 2.5 s.
        d.load(COUNTER.replace("fps: 400", "fps: 0.4"))
        d.client.post("/v1/runs", json={})
        wait_until(
            lambda: d.client.get("/v1/health").status_code == 503,
            timeout=30,
            what="the stalled run to make the daemon unhealthy",
        )
        assert "moved no frame" in d.client.get("/v1/health").json()["detail"]
        wait_until(
            lambda: "not feeding the watchdog" in d.output(),
            timeout=30,
            what="the watchdog to stop",
        )
        d.client.post("/v1/runs/current/stop")
        assert any(s.startswith("STATUS=running") for s in notify.said("STATUS="))
        assert d.terminate() == 0
        wait_until(lambda: notify.said("STOPPING=1"), timeout=10, what="STOPPING=1")
    finally:
        d.stop()
        notify.close()


def test_gpus_show_what_is_placed_where(tmp_path: Path) -> None:
    d = Daemon(tmp_path, env={"RIGD_FAKE_GPUS": "2"})
    try:
        gpus = d.client.get("/v1/gpus").json()
        assert [g["index"] for g in gpus] == [0, 1]
        assert all(g["simulated"] and g["actors"] == [] for g in gpus)
        d.load(COUNTER.replace("    options:", "    num_gpus: 0.5\n    options:", 1))
        d.client.post("/v1/runs", json={})
        d.wait_for_frames(10)
        gpus = d.client.get("/v1/gpus").json()
        placed = [(g["index"], a["name"], a["share"]) for g in gpus for a in g["actors"]]
        assert placed == [(0, "camera", 0.5)]
        assert gpus[0]["allocated"] == 0.5
        # /v1/status carries the same, sampled every 2 s.
        wait_until(lambda: d.status()["gpus"] == gpus, timeout=30, what="status to show the GPUs")
        result = rigd_cli(d, "gpus")
        assert result.returncode == 0, result.stderr
        assert "0.5 GPU: camera (SimulatedCamera" in result.stdout
        d.client.post("/v1/runs/current/stop")
        assert d.terminate() == 0
    finally:
        d.stop()


@pytest.mark.slow
def test_schemathesis_finds_no_server_error(tmp_path: Path) -> None:
    """Up to 35 s of generated requests against the OpenAPI document: no 5xx, every
    status and body as documented. The bundled pipelines are off so a generated load
    cannot start the 10 s demo; the event stream is left out (it never ends), and so
    is the self-test (each call takes seconds by design: its disk and CPU checks)."""
    d = Daemon(tmp_path, bundled_pipelines=False)
    try:
        d.load(COUNTER.replace("pattern: counter", "pattern: counter, n_frames: 200"))
        result = subprocess.run(
            [
                sys.executable, "-m", "schemathesis.cli", "run", f"{d.url}/openapi.json",
                "--header", f"Authorization: Bearer {d.token}",
                "--exclude-path", "/v1/events",
                "--exclude-path", "/v1/selftest",
                "--checks", "all",
                # A pipeline's YAML text is a string to the schema: text that is not
                # a valid pipeline is refused (422) by design.
                "--exclude-checks", "positive_data_acceptance",
                # Bounded so that the suite keeps to its 15 minutes on CI's 2 cores.
                "--max-time", "35",
                "--max-examples", "30",
                "--seed", "7",
                "--no-color",
                "--report-dir", str(tmp_path / "reports"),
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-6000:]
        assert "API Operations" in result.stdout
        assert d.client.get("/v1/health").status_code == 200
        assert d.terminate() == 0, d.output()
        d.assert_nothing_left()
    finally:
        d.stop()


def test_a_second_daemon_on_the_same_data_directory_is_refused_and_touches_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "first").mkdir()
    first = Daemon(tmp_path / "first")
    try:
        config = tmp_path / "second.yaml"
        config.write_text(
            f"port: 0\ndata_dir: {first.data_dir}\ntoken_file: {tmp_path / 'second-token'}\n"
            f"runtime_dir: {tmp_path / 'second-run'}\n"
        )
        second = subprocess.run(
            [sys.executable, "-m", "rigd", "serve", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert second.returncode == 2
        assert "another rigd daemon" in second.stderr
        assert "data directory" in second.stderr
        assert first.client.get("/v1/status").status_code == 200
        assert first.terminate(timeout=60) == 0, first.output()
        first.assert_nothing_left()
    finally:
        first.stop()
