"""A hostile pipeline, request or local user against a real ``rigd serve``: nothing
reaches outside the data and runtime directories, runs code on import, exhausts
the daemon, or hands out the token."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers import wait_until
from tests.service.daemon import ROOT, Daemon, serving

pytestmark = pytest.mark.integration

CAMERA = """\
name: confined
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [8, 8], dtype: uint16, fps: 100}
"""


def with_actor(block: str, links: str = "") -> str:
    text = CAMERA + textwrap.indent(textwrap.dedent(block), "  ")
    return text + (f"links:\n  - {links}\n" if links else "")


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with serving(tmp_path, allowed_modules=["rigd", "tests.service"]) as d:
        yield d


def put(d: Daemon, text: str) -> httpx.Response:
    return d.client.put("/v1/pipeline", content=text, headers={"Content-Type": "application/yaml"})


def refused(d: Daemon, text: str, *needles: str) -> str:
    response = put(d, text)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    for needle in needles:
        assert needle in detail, detail
    return str(detail)


def test_a_pipeline_names_no_place_outside_the_data_and_runtime_directories(
    daemon: Daemon, tmp_path: Path
) -> None:
    victim = tmp_path / "outside" / "precious.txt"
    victim.parent.mkdir()
    victim.write_text("keep me")
    publisher = """\
        - name: view
          class: rigd.pipeline.ZmqPublisher
          options: {{address: "{}"}}
        """
    link = "{link: camera.frames -> view.frames, policy: latest, slots: 4}"
    # ipc outside the runtime directory: an existing file and a missing one read the same.
    existing = refused(daemon, with_actor(publisher.format(f"ipc://{victim}"), link), "ipc")
    missing = refused(
        daemon, with_actor(publisher.format(f"ipc://{victim.parent}/nothingthere"), link), "ipc"
    )
    assert existing == missing.replace("nothingthere", "precious.txt")
    assert victim.read_text() == "keep me"
    assert stat.S_ISREG(victim.stat().st_mode)
    refused(daemon, with_actor(publisher.format("ipc://../escape"), link), "plain name")
    # The network needs an explicit allow; other transports are refused.
    refused(daemon, with_actor(publisher.format("tcp://0.0.0.0:5999"), link), "publish_hosts")
    refused(daemon, with_actor(publisher.format("tcp://[::]:5999"), link), "publish_hosts")
    refused(daemon, with_actor(publisher.format("pgm://eth0;239.1.1.1:5555"), link), "tcp://")
    # Files the pipeline reads: inside the data directory, and regular files only.
    playback = """\
        - name: play
          class: rigd.pipeline.FilePlayback
          options: {{path: "{}"}}
        """
    refused(daemon, with_actor(playback.format("/etc/passwd")), "outside", "data directory")
    refused(daemon, with_actor(playback.format("../outside/precious.txt")), "outside")
    daemon.data_dir.mkdir(exist_ok=True)
    os.mkfifo(daemon.data_dir / "fifo.h5")
    started = time.monotonic()
    refused(daemon, with_actor(playback.format("fifo.h5")), "not a regular file")
    assert time.monotonic() - started < 30  # answered: the FIFO was never opened
    (daemon.data_dir / "link").symlink_to(victim.parent)
    refused(daemon, with_actor(playback.format("link/precious.txt")), "outside")
    # Directories the pipeline writes: the recorder's, by the record: shorthand or by hand.
    recorded = CAMERA + "record: [camera.frames]\nrecording: {directory: link/runs}\n"
    refused(daemon, recorded, "outside")
    # ~ is refused at load, before confinement: rigd does not expand it.
    refused(
        daemon, CAMERA + "record: [camera.frames]\nrecording: {directory: ~/runs}\n", "without ~"
    )
    # An option that names a place the class does not declare, at any depth.
    sink = """\
        - name: sink
          class: tests.service.actors.Sink
          options: {}
        """
    link = "camera.frames -> sink.frames"
    refused(daemon, with_actor(sink.format('{log_file: "x.log"}'), link), "'log_file'")
    refused(daemon, with_actor(sink.format('{tag: "/etc/shadow"}'), link), "looks like a path")
    refused(daemon, with_actor(sink.format('{tag: "a/../../b"}'), link), "looks like a path")
    assert daemon.status()["state"] == "idle"
    assert sorted(p.name for p in victim.parent.iterdir()) == ["precious.txt"]
    # What is allowed: an ipc socket in the runtime directory, gone after the run.
    link = "{link: camera.frames -> view.frames, policy: latest, slots: 4}"
    assert put(daemon, with_actor(publisher.format("ipc://viewer"), link)).status_code == 200
    started_run = daemon.client.post("/v1/runs", json={})
    assert started_run.status_code == 201, started_run.text
    sock = daemon.runtime_dir / "ipc" / "viewer"
    wait_until(sock.exists, timeout=30, what="the publisher's socket")
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert daemon.client.post("/v1/runs/current/stop").status_code == 200
    assert not sock.exists()


def test_a_module_that_runs_on_import_is_never_imported(tmp_path: Path) -> None:
    d = Daemon(tmp_path, allowed_modules=["rigd", "tests"])
    try:
        for class_path in (
            "rigd.__main__.main",  # the daemon's own CLI: would start another daemon
            "rigd.service.main",
            "rigd.service._cli.main",
            "rigd.service._serve.serve",
            "tests.__main__.X",
            "tests.service.__init__.X",
        ):
            text = f"actors:\n  - {{name: a, class: {class_path}}}\n"
            refused(d, text, "refused", class_path)
        assert d.status()["state"] == "idle"
        assert d.terminate() == 0, d.output()
    finally:
        d.stop()


def bomb(levels: int = 9) -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        refs = ",".join([f"*a{i - 1}"] * 9)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test_an_alias_bomb_is_refused_in_bounded_memory(daemon: Daemon) -> None:
    before = rss_mb(daemon.pid)
    text = bomb()
    assert len(text) < 1000
    for content_type, body in (
        ("application/yaml", text.encode()),
        ("application/json", json.dumps({"text": text}).encode()),
    ):
        response = daemon.client.put(
            "/v1/pipeline", content=body, headers={"Content-Type": content_type}, timeout=30
        )
        assert response.status_code == 422, response.text
        assert "anchors and aliases" in response.json()["detail"]
    # Deep nesting is refused too, not a crash.
    deep = "a: " + "[" * 20000 + "]" * 20000
    response = put(daemon, deep)
    assert response.status_code == 422, response.text
    assert rss_mb(daemon.pid) - before < 200
    assert daemon.status()["state"] == "idle"


def test_a_huge_plain_list_is_refused_as_too_big_not_blamed_on_aliases() -> None:
    from rigd.config import PipelineFileError, load_pipeline

    text = "name: big\nactors: []\nextra: [" + ", ".join(["1"] * 120_000) + "]\n"

    with pytest.raises(PipelineFileError) as info:
        load_pipeline("big.yaml", text=text, allow_aliases=False)

    assert "holds more than 100000 values" in str(info.value)
    assert "alias" not in str(info.value)


def test_a_name_with_a_dash_is_refused_with_the_rule_in_words_not_a_regex() -> None:
    from rigd.config import PipelineFileError, load_pipeline

    text = "name: my-pipe\nactors:\n  - {name: cam-1, class: rigd.pipeline.SimulatedCamera}\n"

    with pytest.raises(PipelineFileError) as info:
        load_pipeline("names.yaml", text=text)

    assert len(info.value.problems) == 2  # both names, in one report
    assert "name 'my-pipe': use letters, digits and '_'" in info.value.problems[0]
    assert "line 3, actors[0].name: name 'cam-1'" in info.value.problems[1]
    assert "[A-Za-z" not in str(info.value)


def test_sigterm_stops_the_daemon_whatever_a_request_is_doing(tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    d = Daemon(tmp_path, env={"RIGD_TEST_GATE": str(gate)}, allowed_modules=["rigd", "tests"])
    writer = -1
    try:
        text = "actors:\n  - {name: a, class: tests.service.blocking_import.X}\n"
        stuck = threading.Thread(target=lambda: _put_quietly(d, text), daemon=True)
        stuck.start()

        def importing() -> bool:  # the FIFO has a reader: the import is blocked in it
            nonlocal writer
            try:
                writer = os.open(gate, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                if exc.errno != errno.ENXIO:
                    raise
                return False
            return True

        wait_until(importing, timeout=60, what="the load to block in the import")
        started = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        assert d.proc.wait(timeout=60) == 0, d.output()
        assert time.monotonic() - started < 30
        assert not (d.runtime_dir / "daemon.json").exists()
        d.assert_nothing_left()
    finally:
        if writer >= 0:
            os.close(writer)
        d.stop()


def _put_quietly(d: Daemon, text: str) -> None:
    try:
        put(d, text)
    except httpx.HTTPError:
        pass  # the daemon went away mid-request, as the test wants


# -- finding the daemon ---------------------------------------------------------------------


class Listener:
    """A loopback HTTP listener that records what clients send it."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                with conn:
                    conn.settimeout(5)
                    try:
                        self.received += conn.recv(65536)
                    except OSError:
                        pass
                    conn.sendall(b"HTTP/1.1 500 X\r\nContent-Length: 0\r\n\r\n")
        except OSError:
            return

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short TMPDIR of its own (socket paths must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def client_env(tmpdir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("RIGD_ADDRESS", "XDG_RUNTIME_DIR", "RUNTIME_DIRECTORY")
    }
    return {**env, "TMPDIR": str(tmpdir), "PYTHONPATH": str(ROOT)}


def rigd_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rigd", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a directory another user owns")
def test_an_address_file_someone_else_planted_never_gets_the_token(
    daemon: Daemon, short_tmp: Path
) -> None:
    if Path("/run/rigd/daemon.json").exists():
        pytest.skip("a real daemon's /run/rigd is found first on this machine")
    listener = Listener()
    try:
        planted = short_tmp / f"rigd-{os.getuid()}"
        planted.mkdir(mode=0o700)
        address = {**daemon.address, "url": listener.url, "pid": os.getpid()}
        (planted / "daemon.json").write_text(json.dumps(address))
        env = client_env(short_tmp)
        for owner, mode, reason in (
            (65534, 0o700, "owned by uid 65534"),  # another user's directory
            (os.getuid(), 0o777, "mode is 777"),  # ours, but anyone may replace the file
            (os.getuid(), 0o755, "must be 0700"),
        ):
            os.chown(planted, owner, -1)
            os.chmod(planted, mode)
            result = rigd_cli(env, "status")
            assert result.returncode != 0
            assert f"refused {planted}" in result.stderr, result.stderr
            assert reason in result.stderr, result.stderr
        assert daemon.token.encode() not in listener.received
        assert listener.received == b""
    finally:
        listener.close()


def test_init_never_sweeps_a_live_daemons_directory(tmp_path: Path, short_tmp: Path) -> None:
    if Path("/run/rigd/daemon.json").exists():
        pytest.skip("a real daemon's /run/rigd is found first on this machine")
    runtime = short_tmp / f"rigd-{os.getuid()}"  # the default place without XDG_RUNTIME_DIR
    env = client_env(short_tmp)
    # Names like a session's that are not one, or not ours: never touched.
    dead = 2**22 + 12345
    keep = [short_tmp / f"rigd-{dead}", short_tmp / f"rigd-{dead}-note"]
    for path in keep:
        path.mkdir()
        (path / "f").write_text("x")
    stale = short_tmp / f"rigd-{dead}-abcdef-xyz"  # a crashed session of ours: swept
    stale.mkdir()
    d = Daemon(tmp_path, env={"TMPDIR": str(short_tmp)}, runtime_dir=str(runtime))
    try:
        result = subprocess.run(
            [sys.executable, "-c", "import rigd; rigd.init(); rigd.shutdown()"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert (runtime / "daemon.json").exists()
        assert all(p.exists() for p in keep)
        assert not stale.exists()
        status = rigd_cli(env, "status")
        assert status.returncode == 0, status.stderr
        assert d.terminate() == 0, d.output()
    finally:
        d.stop()
