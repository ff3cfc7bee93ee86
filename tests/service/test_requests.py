"""Requests as lab software sends them, against a real ``rigd serve``: bad fields are
refused without changing anything, runs are never recorded over or lost, nested
metadata and form-encoded bodies work, and a keep-alive client is answered at once."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import h5py
import httpx
import pytest

from rigd.storage import inspect_run
from tests.helpers import wait_until
from tests.service.daemon import COUNTER, Daemon

pytestmark = pytest.mark.integration

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def cli(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rigd", *args],
        env=d.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_bad_field_gets_a_4xx_naming_it_and_changes_nothing(daemon: Daemon) -> None:
    daemon.load()
    cases: list[tuple[dict[str, Any] | str, str]] = [
        ({"metadata": {"animal\u0000": "m"}}, "NUL"),
        ({"metadata": {"animal": "m\u0000x"}}, "NUL"),
        ({"metadata": {"k" * 300: 1}}, "at most 255"),
        ({"metadata": {"note": "x" * 20000}}, "16384"),
        ({"metadata": {f"k{i}": "x" * 16000 for i in range(5)}}, "65536"),
        ({"metadata": {"run_state": "complete"}}, "run_state"),
        ({"metadata": {"big": 2**70}}, "64-bit"),
        ({"run_id": "x" * 200}, "run_id"),
        ({"run_id": "a\u0000b"}, "run_id"),
        # JSON's 1e400 is infinity in Python: it would break every JSON answer after.
        ('{"metadata": {"x": 1e400}}', "not a finite number"),
        ('{"metadata": {"xs": [1, -1e400]}}', "not finite"),
    ]

    def check(state: str) -> None:
        for body, needle in cases:
            if isinstance(body, str):
                response = daemon.client.post(
                    "/v1/runs", content=body, headers={"Content-Type": "application/json"}
                )
            else:
                response = daemon.client.post("/v1/runs", json=body)
            assert response.status_code == 422, (body, response.text)
            assert needle in response.json()["detail"], response.text
            assert daemon.status()["state"] == state

    check("loaded")
    assert daemon.client.get("/v1/runs").json() == []
    # During a run: refused the same way, and the run goes on.
    run = daemon.client.post("/v1/runs", json={"run_id": "good"}).json()
    check("running")
    assert daemon.status()["run"]["run_id"] == run["run_id"]
    stopped = daemon.client.post("/v1/runs/current/stop").json()
    assert stopped["state"] == "complete"
    # A pipeline file's own fields, at load.
    bad_meta = COUNTER + 'run:\n  metadata: {animal: "m\\0x"}\n'
    response = daemon.client.put(
        "/v1/pipeline", content=bad_meta, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 422
    assert "run.metadata" in response.json()["detail"]
    assert "NUL" in response.json()["detail"]
    long_name = COUNTER.replace("name: counter", "name: " + "p" * 200)
    response = daemon.client.put(
        "/v1/pipeline", content=long_name, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code == 422
    assert "line 1, name" in response.json()["detail"]
    assert daemon.status()["state"] == "loaded"
    assert [r["run_id"] for r in daemon.client.get("/v1/runs").json()] == ["good"]


def test_a_finished_run_id_is_refused_and_a_retry_is_safe(daemon: Daemon) -> None:
    daemon.load()
    start = {"run_id": "trial-1", "metadata": {"subject_id": "M1"}}
    first = daemon.client.post("/v1/runs", json=start)
    retry = daemon.client.post("/v1/runs", json=start)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["files"] == first.json()["files"]
    # Not a retry: other metadata would be believed stored.
    other = daemon.client.post(
        "/v1/runs", json={"run_id": "trial-1", "metadata": {"subject_id": "M2"}}
    )
    assert other.status_code == 409
    assert "other metadata" in other.json()["detail"]
    assert daemon.client.get("/v1/runs/trial-1").json()["metadata"] == {"subject_id": "M1"}
    daemon.client.post("/v1/runs/current/stop")
    again = daemon.client.post("/v1/runs", json={"run_id": "trial-1"})
    assert again.status_code == 409
    assert "new id" in again.json()["detail"]
    assert daemon.status()["state"] == "loaded"
    result = cli(daemon, "start", "--run-id", "trial-1")
    assert result.returncode != 0
    assert "already used" in result.stderr
    assert len(daemon.client.get("/v1/runs").json()) == 1


def test_a_run_whose_file_name_repeats_is_refused_with_409_and_the_file_kept(
    daemon: Daemon,
) -> None:
    daemon.load(COUNTER + 'recording: {template: "{pipeline}.h5"}\n')
    first = daemon.client.post("/v1/runs", json={"run_id": "ra"}).json()
    done = daemon.client.post("/v1/runs/current/stop").json()
    assert done["state"] == "complete"
    (file,) = first["files"]
    before = Path(file).read_bytes()

    response = daemon.client.post("/v1/runs", json={"run_id": "rb"})

    assert response.status_code == 409, response.text
    assert "exists already" in response.json()["detail"]
    assert Path(file).read_bytes() == before
    assert daemon.client.get("/v1/runs/rb").json()["state"] == "failed"
    assert daemon.client.get("/v1/status").status_code == 200


def test_nested_metadata_is_stored_as_json_and_numbers_as_numbers(daemon: Daemon) -> None:
    daemon.load()
    mouse = {"id": "M12", "weight_g": 23.5, "tags": ["a", "b"]}
    run = daemon.client.post(
        "/v1/runs", json={"run_id": "nested", "metadata": {"mouse": mouse, "n": 3}}
    )
    assert run.status_code == 201, run.text
    daemon.client.post("/v1/runs/current/stop")
    result = cli(daemon, "start", "--run-id", "cli", "--meta", "weight_g=23.5")
    assert result.returncode == 0, result.stderr
    cli_run = daemon.client.get("/v1/runs/cli").json()
    daemon.client.post("/v1/runs/current/stop")
    with h5py.File(run.json()["files"][0], "r") as f:
        assert json.loads(f.attrs["mouse"]) == mouse
        assert f.attrs["n"] == 3
    with h5py.File(cli_run["files"][0], "r") as f:
        assert f.attrs["weight_g"] == 23.5
        assert f.attrs["weight_g"].dtype.kind == "f"


def test_form_encoded_bodies_as_matlab_and_octave_send_them(daemon: Daemon) -> None:
    response = daemon.client.put("/v1/pipeline", content="file=demo", headers=FORM)
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "demo"
    response = daemon.client.put(
        "/v1/pipeline", content=httpx.QueryParams({"text": COUNTER}).__str__(), headers=FORM
    )
    assert response.status_code == 200, response.text
    assert response.json()["name"] == "counter"
    # MATLAB's webwrite(url, "run_id", "f1", "meta.mouse", "M12", "meta.weight_g", 23.5)
    body = "run_id=f1&meta.mouse=M12&meta.weight_g=23.5&meta.id=%22007%22"
    response = daemon.client.post("/v1/runs", content=body, headers=FORM)
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == {"mouse": "M12", "weight_g": 23.5, "id": "007"}
    assert daemon.client.post("/v1/runs/current/stop", content="", headers=FORM).status_code == 200
    # The metadata as one JSON field.
    meta = json.dumps({"mouse": {"id": "M12"}})
    response = daemon.client.post(
        "/v1/runs", content=str(httpx.QueryParams({"run_id": "f2", "metadata": meta})), headers=FORM
    )
    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == {"mouse": {"id": "M12"}}
    daemon.client.post("/v1/runs/current/stop")
    # GNU Octave 7 sends an empty form: a start with the defaults.
    response = daemon.client.post("/v1/runs", content=b"", headers=FORM)
    assert response.status_code == 201, response.text
    daemon.client.post("/v1/runs/current/stop")
    # Refusals name the field, or what is accepted.
    response = daemon.client.post("/v1/runs", content="colour=red", headers=FORM)
    assert response.status_code == 422
    assert "colour" in response.json()["detail"]
    response = daemon.client.post("/v1/runs", content="metadata=notjson", headers=FORM)
    assert response.status_code == 422
    assert "metadata" in response.json()["detail"]
    response = daemon.client.post(
        "/v1/runs", content=b"<run/>", headers={"Content-Type": "text/xml"}
    )
    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["detail"]
    assert daemon.status()["state"] == "loaded"
    assert len(daemon.client.get("/v1/runs").json()) == 3


def test_a_keep_alive_client_is_answered_without_delay(daemon: Daemon) -> None:
    latencies = []
    with httpx.Client(
        base_url=daemon.url, headers={"Authorization": f"Bearer {daemon.token}"}, timeout=30
    ) as client:
        client.get("/v1/status")
        for _ in range(100):
            started = time.perf_counter()
            assert client.get("/v1/status").status_code == 200
            latencies.append(time.perf_counter() - started)
            started = time.perf_counter()
            response = client.post("/v1/runs/current/stop", json={})
            assert response.status_code == 409  # a request with a body, answered at once
            latencies.append(time.perf_counter() - started)
    # Nagle's algorithm with delayed ACKs costs 40 ms a request: the median shows it.
    assert statistics.median(latencies) < 0.02, statistics.median(latencies)


def test_docs_load_without_the_internet(daemon: Daemon) -> None:
    page = httpx.get(daemon.url + "/docs", timeout=30)
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    assert "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/docs/assets/{asset}" in page.text
        response = httpx.get(f"{daemon.url}/docs/assets/{asset}", timeout=30)
        assert response.status_code == 200
        assert len(response.content) > 10_000
    assert httpx.get(daemon.url + "/openapi.json", timeout=30).status_code == 200


def test_a_run_the_daemon_did_not_live_to_finish_is_listed_as_recovered(tmp_path: Path) -> None:
    d = Daemon(tmp_path)
    try:
        d.load()
        run = d.client.post("/v1/runs", json={"run_id": "crash"}).json()
        d.wait_for_frames(50)
        os.kill(d.pid, signal.SIGKILL)
        d.proc.wait(timeout=30)
    finally:
        d.stop()
    wait_until(lambda: not _workers(d.pid), timeout=30, what="the workers to exit")
    (d.runtime_dir / "daemon.json").unlink()  # the killed daemon's, naming its port
    again = Daemon(tmp_path)
    try:
        record = again.client.get("/v1/runs/crash")
        assert record.status_code == 200, record.text
        body = record.json()
        assert body["state"] == "recovered"
        assert body["files"] == run["files"]
        assert body["frames"]["camera"] >= 1
        assert "repaired" in body["failure"]
        assert inspect_run(run["files"][0]).run_state == "recovered"
        assert again.client.post("/v1/runs", json={"run_id": "crash"}).status_code == 409
        assert again.terminate() == 0, again.output()
    finally:
        again.stop()


def _workers(pid: int) -> list[int]:
    from tests.service.daemon import workers_of

    return workers_of(pid)


def test_a_finished_run_exports_as_nwb(daemon: Daemon, tmp_path: Path) -> None:
    pynwb = pytest.importorskip("pynwb")
    daemon.load()
    subject = {"subject_id": "M12", "species": "Mus musculus", "age": "P90D"}
    for run_id, metadata in (("bare", {}), ("full", {**subject, "session_description": "x"})):
        assert (
            daemon.client.post(
                "/v1/runs", json={"run_id": run_id, "metadata": metadata}
            ).status_code
            == 201
        )
        daemon.client.post("/v1/runs/current/stop")

    refused = daemon.client.get("/v1/runs/bare/export", params={"format": "nwb"})
    nwb = daemon.client.get("/v1/runs/full/export", params={"format": "nwb"})
    other = daemon.client.get("/v1/runs/full/export", params={"format": "tiff"})

    assert refused.status_code == 422
    assert "session_description, subject_id, species" in refused.json()["detail"]
    assert nwb.status_code == 200, nwb.text
    assert nwb.headers["content-type"] == "application/x-nwb"
    (tmp_path / "full.nwb").write_bytes(nwb.content)
    with pynwb.NWBHDF5IO(str(tmp_path / "full.nwb"), "r") as io:
        assert io.read().subject.subject_id == "M12"
    assert other.status_code == 422


def test_the_rest_export_takes_the_nwb_metadata_as_meta_query_parameters(
    daemon: Daemon, tmp_path: Path
) -> None:
    pynwb = pytest.importorskip("pynwb")
    daemon.load()
    assert daemon.client.post("/v1/runs", json={"run_id": "meta-later"}).status_code == 201
    daemon.client.post("/v1/runs/current/stop")
    url = "/v1/runs/meta-later/export"
    meta = {
        "meta.session_description": "given at export",
        "meta.subject_id": '"007"',
        "meta.species": "Mus musculus",
        "meta.age": "P90D",
    }
    missing = daemon.client.get(url, params={"format": "nwb", "meta.subject_id": "M1"})
    assert missing.status_code == 422
    assert "session_description" in missing.json()["detail"]
    assert "subject_id" not in missing.json()["detail"].split(";")[0]
    assert "meta.KEY=VALUE" in missing.json()["detail"]
    for hostile in ({"meta.": "x"}, {"meta.a/b": "x"}, {"mouse": "M1"}, {"meta.run_id": "x"}):
        refused = daemon.client.get(url, params={**meta, **hostile})
        assert refused.status_code == 422, refused.text
        assert next(iter(hostile)) in refused.text
    nwb = daemon.client.get(url, params={"format": "nwb", **meta})
    assert nwb.status_code == 200, nwb.text
    (tmp_path / "later.nwb").write_bytes(nwb.content)
    with pynwb.NWBHDF5IO(str(tmp_path / "later.nwb"), "r") as io:
        read = io.read()
        assert read.subject.subject_id == "007"
        assert read.session_description == "given at export"
    run_dir = Path(daemon.client.get("/v1/runs/meta-later").json()["files"][0]).parent
    wait_until(
        lambda: not [p for p in run_dir.iterdir() if p.name.startswith(".meta-later-")],
        timeout=10,
        what="the export's own file to be removed once sent",
    )


def test_an_export_whose_client_goes_away_mid_file_leaves_no_file_behind(daemon: Daemon) -> None:
    pytest.importorskip("pynwb")
    daemon.load(COUNTER.replace("shape: [32, 48]", "shape: [256, 256]"))
    assert daemon.client.post("/v1/runs", json={"run_id": "gone-client"}).status_code == 201
    daemon.wait_for_frames(200)  # 26 MB of frames: an export of many chunks
    daemon.client.post("/v1/runs/current/stop")
    meta = {
        "meta.session_description": "x",
        "meta.subject_id": "M1",
        "meta.species": "Mus musculus",
        "meta.age": "P90D",
    }
    with daemon.client.stream("GET", "/v1/runs/gone-client/export", params=meta) as response:
        assert response.status_code == 200
        next(response.iter_bytes())  # the first chunk; then the connection is dropped
    run_dir = Path(daemon.client.get("/v1/runs/gone-client").json()["files"][0]).parent
    wait_until(
        lambda: not [p for p in run_dir.iterdir() if p.name.startswith(".gone-client-")],
        timeout=10,
        what="the export's own file to be removed when its client left",
    )
