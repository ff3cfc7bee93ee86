"""The self-test's free-space check applies the rule ``rigd start`` applies: a
planned run (sources with ``n_frames``) that cannot fit fails the check, in the
CLI's table (exit status 1) and in ``GET /v1/selftest``'s report (not a 507)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.daemon import COUNTER, ROOT, serving

pytestmark = pytest.mark.integration

# 100,000,000 frames of 32x48 uint16: 307 GB, more than any test disk holds.
HUGE = COUNTER.replace("name: counter", "name: huge").replace(
    "fps: 400", "fps: 400, n_frames: 100000000"
)


def test_rigd_selftest_fails_the_free_space_of_a_planned_run_start_would_refuse(
    tmp_path: Path,
) -> None:
    pipeline = tmp_path / "huge.yaml"
    pipeline.write_text(HUGE)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RIGD_ADDRESS": str(tmp_path / "none")}
    done = subprocess.run(
        [sys.executable, "-m", "rigd", "selftest", str(pipeline), "--seconds", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    line = re.search(r"^FAIL  free space .*records 307,200\.0 MB", done.stdout, re.M)
    assert line, done.stdout
    assert "record fewer frames" in done.stdout


def test_the_daemon_selftest_reports_a_planned_run_too_big_as_a_failed_check(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as d:
        d.load(HUGE)
        response = d.client.get("/v1/selftest", params={"seconds": 1})
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["passed"] is False
        checks = {c["name"]: c for c in report["checks"]}
        assert checks["free space"]["ok"] is False
        assert "307,200.0 MB" in checks["free space"]["figure"]
        assert checks["run"]["ok"] is None
        assert "not run" in checks["run"]["figure"]
        assert d.status()["state"] == "loaded"
        # start applies the same rule
        assert d.client.post("/v1/runs", json={"run_id": "huge"}).status_code == 507
