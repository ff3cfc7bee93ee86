"""A real ``rigd serve`` for the service tests: its own process, port, token and data."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import SHM, pid_alive, wait_until

ROOT = Path(__file__).resolve().parents[2]

#: A camera that runs until stopped, small frames, counter pattern, recorded.
#: ``overflow: block``: a generator that waits for the recorder, so the
#: daemon's tests can count on every frame (camera drops: test_camera_drops).
COUNTER = """\
name: counter
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [32, 48], dtype: uint16, fps: 400, pattern: counter, overflow: block}
record: [camera.frames]
"""


class Daemon:
    """One daemon process, started in ``directory`` with ``config`` keys added."""

    def __init__(self, directory: Path, env: dict[str, str] | None = None, **config: Any) -> None:
        self.directory = directory
        self.runtime_dir = Path(config.pop("runtime_dir", directory / "run"))
        self.data_dir = directory / "data"
        self.token_file = directory / "token"
        settings = {
            "port": 0,
            "token_file": str(self.token_file),
            "data_dir": str(self.data_dir),
            "runtime_dir": str(self.runtime_dir),
            **config,
        }
        self.config_file = directory / "service.yaml"
        self.config_file.write_text(json.dumps(settings))
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "RIGD_ADDRESS": str(self.runtime_dir),
            **(env or {}),
        }
        self.log = open(directory / "daemon.log", "w+")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rigd", "serve", "--config", str(self.config_file)],
            cwd=directory,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.pid = self.proc.pid
        daemon_file = self.runtime_dir / "daemon.json"
        try:
            wait_until(
                lambda: daemon_file.exists() or self.proc.poll() is not None,
                timeout=60,
                what="the daemon to write daemon.json",
            )
            assert self.proc.poll() is None, self.output()
        except BaseException:
            self.proc.kill()
            self.proc.wait(timeout=30)
            self.log.close()
            raise
        self.address = json.loads(daemon_file.read_text())
        self.url = self.address["url"]
        self.token = self.token_file.read_text().strip()
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=120
        )
        wait_until(self._answers, timeout=30, what="the API to answer")

    def _answers(self) -> bool:
        try:
            return httpx.get(self.url + "/v1/health", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def load(self, text: str = COUNTER) -> dict[str, Any]:
        response = self.client.put(
            "/v1/pipeline", content=text, headers={"Content-Type": "application/yaml"}
        )
        assert response.status_code == 200, response.text
        return response.json()

    def status(self) -> dict[str, Any]:
        response = self.client.get("/v1/status")
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_frames(self, n: int, timeout: float = 30) -> None:
        def enough() -> bool:
            links = self.status()["links"]
            return bool(links) and min(link["written"] for link in links) >= n

        wait_until(enough, timeout=timeout, what=f"{n} frames on every link")

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, as systemd stops it; the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.client.close()

    def assert_nothing_left(self) -> None:
        """No worker, ring, segment, socket directory or daemon.json of this daemon remains."""
        wait_until(lambda: not workers_of(self.pid), timeout=15, what="the workers to exit")
        prefix = f"rigd-{self.pid}-"
        assert [n for n in os.listdir(SHM) if n.startswith(prefix)] == []
        assert [n for n in os.listdir(tempfile.gettempdir()) if n.startswith(prefix)] == []
        assert not (self.runtime_dir / "daemon.json").exists()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.client.close()
        self.log.close()


def rigd_cli_in(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m rigd ARGS`` in ``cwd`` (rigd's tests importable), its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "rigd", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=timeout,
        check=False,
    )


def workers_of(daemon_pid: int) -> list[int]:
    """Live worker processes started by the daemon ``daemon_pid`` (its pid is their last
    argument), wherever they were reparented."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        ours = b"rigd.actors._worker" in args and str(daemon_pid).encode() in args[-3:]
        if ours and pid_alive(int(entry)):
            found.append(int(entry))
    return found


@contextlib.contextmanager
def serving(directory: Path, env: dict[str, str] | None = None, **config: Any) -> Iterator[Daemon]:
    """A daemon for one test: SIGTERM must stop it with status 0 and leave nothing."""
    d = Daemon(directory, env=env, **config)
    try:
        yield d
        assert d.terminate() == 0, d.output()
        d.assert_nothing_left()
    finally:
        d.stop()
