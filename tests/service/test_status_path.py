"""``GET /v1/status`` as lab software polls it, against a real ``rigd serve``: answered
beneath FastAPI's router (``rigd.service._status_path``) with the route's answer, the
token checked as the route checks it, and never a stale status."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from rigd.pipeline import RunState
from rigd.service._records import RunRecord
from tests.service.daemon import COUNTER, Daemon

pytestmark = pytest.mark.integration

STATUS_FIELDS = {
    "state",
    "failure",
    "pipeline",
    "namespace",
    "run",
    "actors",
    "links",
    "gpus",
    "disk",
    "sampled_at",
}


def test_a_status_request_without_the_token_gets_the_routes_401_and_one_with_it_the_status(
    daemon: Daemon,
) -> None:
    token = daemon.token
    refused: list[list[tuple[str, str]]] = [
        [],
        [("Authorization", "Bearer")],
        [("Authorization", f"Bearer {token}x")],
        [("Authorization", f"Bearer {token[:-1]}")],
        [("Authorization", f"Basic {token}")],
        [("Authorization", token)],
        # As the route reads them, the first Authorization header counts.
        [("Authorization", "Bearer wrong"), ("Authorization", f"Bearer {token}")],
    ]
    with httpx.Client(base_url=daemon.url, timeout=30) as client:
        for headers in refused:
            response = client.get("/v1/status", headers=headers)
            assert response.status_code == 401, (headers, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert "token" in response.json()["detail"]
        # The scheme is case-insensitive and the credentials trimmed, as HTTPBearer does.
        for value in (f"Bearer {token}", f"bearer  {token}", f"BEARER {token}"):
            response = client.get("/v1/status?ignored=1", headers={"Authorization": value})
            assert response.status_code == 200, (value, response.text)
            assert response.headers["content-type"] == "application/json"
            assert int(response.headers["content-length"]) == len(response.content)
            assert set(response.json()) == STATUS_FIELDS
            assert response.json()["state"] == "idle"
        # Other methods are the router's to answer: 405, HEAD too (a FastAPI route).
        good = {"Authorization": f"Bearer {token}"}
        for method in ("POST", "HEAD", "DELETE"):
            assert client.request(method, "/v1/status", headers=good).status_code == 405
    assert daemon.status()["state"] == "idle"


def test_a_poll_on_one_connection_sees_each_change_as_soon_as_its_request_is_answered(
    daemon: Daemon,
) -> None:
    # The encoded status is reused while it is equal: never once it changed.
    with httpx.Client(
        base_url=daemon.url, headers={"Authorization": f"Bearer {daemon.token}"}, timeout=120
    ) as client:
        first = client.get("/v1/status").json()
        assert (first["state"], first["pipeline"], first["run"]) == ("idle", None, None)
        assert client.put(
            "/v1/pipeline", content=COUNTER, headers={"Content-Type": "application/yaml"}
        ).is_success
        loaded = client.get("/v1/status").json()
        assert (loaded["state"], loaded["pipeline"]) == ("loaded", "counter")
        started = client.post(
            "/v1/runs", json={"run_id": "poll-1", "metadata": {"mouse": {"id": "m7"}}}
        )
        assert started.status_code == 201, started.text
        running = client.get("/v1/status").json()
        assert running["state"] == "running"
        assert running["run"]["run_id"] == "poll-1"
        assert running["run"]["metadata"] == {"mouse": {"id": "m7"}}
        assert running["run"]["files"] == started.json()["files"]
        stopped = client.post("/v1/runs/current/stop")
        assert stopped.status_code == 200, stopped.text
        after = client.get("/v1/status").json()
        assert after["state"] == "loaded"
        assert after["run"]["state"] == "complete"
        assert after["run"]["frames"] == stopped.json()["frames"]
        assert after["run"]["frames"]["camera"] > 0


def test_a_run_record_as_data_is_what_dataclasses_asdict_gives_and_a_copy() -> None:
    record = RunRecord(
        run_id="r1",
        pipeline="demo",
        state=RunState.RUNNING,
        started_at="2026-11-30T09:00:00.000+00:00",
        metadata={"mouse": {"id": "m7", "weights_g": [23.5, 23.7]}, "trial": 3},
        files=["/data/r1.h5"],
        frames={"camera": 10},
        dropped={"camera": 0},
        restarts={"camera": 1},
    )
    expected = dataclasses.asdict(record)
    expected["state"] = "running"
    data = record.to_dict()
    assert data == expected
    assert list(data) == list(expected)
    data["metadata"]["mouse"]["weights_g"].append(0.0)
    data["files"].append("/elsewhere.h5")
    data["frames"]["camera"] = 0
    assert record.metadata["mouse"]["weights_g"] == [23.5, 23.7]
    assert record.files == ["/data/r1.h5"]
    assert record.frames == {"camera": 10}
