"""``rigd cameras`` and ``GET /v1/cameras``: the simulated GigE Vision camera, listed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline.camera import DEVICE_ID, simulator  # noqa: F401 - the fixture
from tests.service.daemon import Daemon


@pytest.mark.usefixtures("simulator")
def test_rigd_cameras_lists_the_simulated_camera_without_a_daemon(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}

    out = subprocess.run(
        [sys.executable, "-m", "rigd", "cameras"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    ).stdout

    header, *rows = out.splitlines()
    assert header.split() == ["ID", "VENDOR", "MODEL", "SERIAL", "INTERFACE", "ADDRESS"]
    assert [DEVICE_ID, "Aravis", "Fake", "GV01", "GigEVision", "127.0.0.1"] in [
        r.split() for r in rows
    ]


@pytest.mark.usefixtures("simulator")
def test_get_cameras_serves_the_same_list(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    try:
        cameras = daemon.client.get("/v1/cameras").json()
        assert daemon.terminate() == 0, daemon.output()
        daemon.assert_nothing_left()
    finally:
        daemon.stop()

    assert {
        "id": DEVICE_ID,
        "vendor": "Aravis",
        "model": "Fake",
        "serial": "GV01",
        "interface": "GigEVision",
        "address": "127.0.0.1",
        "physical_id": "",
    } in [dict(c, physical_id="") for c in cameras]
