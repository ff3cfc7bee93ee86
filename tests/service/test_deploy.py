"""The deployment files: the systemd unit, the service configs and the container.

They cannot run here (no systemd as init, no container engine), so these
check what a mistake in them would break on a rig."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from rigd.config import load_service_config
from rigd.service._systemd import notify, watchdog_interval

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "systemd" / "rigd.service"


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_the_unit_waits_for_ready_and_stops_the_way_rigd_seals_files() -> None:
    service = unit()["Service"]
    assert service["Type"] == "notify"
    assert service["ExecStart"].split()[1:] == ["serve", "--config", "/etc/rigd/service.yaml"]
    # SIGTERM to rigd alone: the actors must keep running while the rings drain.
    assert service["KillMode"] == "mixed"
    assert service["KillSignal"] == "SIGTERM"
    assert int(service["TimeoutStopSec"]) >= 60
    assert int(service["WatchdogSec"]) > 0
    assert service["RuntimeDirectory"] == "rigd"  # where daemon.json goes
    assert service["User"] != "root"
    assert "PrivateTmp" not in service  # scripts reach the runtime's sockets in /tmp


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_finds_nothing_wrong_but_the_missing_install() -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "/opt/rigd/bin/rigd" not in line
    ]
    assert problems == []


@pytest.mark.parametrize("config", ["deploy/service.yaml", "docker/service.yaml"])
def test_the_shipped_service_configs_are_valid(config: str) -> None:
    loaded = load_service_config(ROOT / config)
    assert loaded.port == 8470
    assert loaded.allowed_modules == ["rigd"]


def test_the_container_runs_as_a_user_and_publishes_on_loopback_only() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "FROM nvidia/cuda:" in dockerfile
    assert "[gpu]" in dockerfile
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users
    assert users[-1] not in ("root", "0")
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    service = compose["services"]["rigd"]
    assert all(port.startswith("127.0.0.1:") for port in service["ports"])
    assert service["shm_size"]
    (device,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert device["capabilities"] == ["gpu"]
    assert service["stop_signal"] == "SIGTERM"
    # The whole repository is the build context: what the Dockerfile copies is there.
    for line in dockerfile.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


def test_without_systemd_notify_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert notify("READY=1") is False
    assert watchdog_interval() is None
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    assert watchdog_interval() == 15.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # another process's watchdog
    assert watchdog_interval() is None
