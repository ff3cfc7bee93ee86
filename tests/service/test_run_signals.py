"""``rigd run`` and ``rigd serve`` given SIGTERM twice, as ``timeout`` sends it (to the
process, then to its whole process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from rigd.storage import inspect_run
from tests.helpers import wait_until
from tests.service.daemon import Daemon

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = (
    "name: draining\n"
    "actors:\n"
    "  - {name: camera, class: rigd.pipeline.SimulatedCamera,"
    " options: {shape: [64, 64], fps: 200, overflow: block}}\n"
    "  - {name: slow, class: tests.pipeline.actors.SlowViewer, options: {delay: 0.1}}\n"
    "links:\n"
    "  - {link: camera.frames -> slow.frames, slots: 32}\n"
    "record: [camera.frames]\n"
)


def workers_of(pid: int) -> list[int]:
    """Live actor processes whose head is ``pid`` (their command line names it)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"rigd.actors._worker" in argv and argv[-2:-1] == [str(pid).encode()]:
            found.append(int(entry))
    return found


def test_a_group_sigterm_twice_as_timeout_sends_it_stops_cleanly(tmp_path: Path) -> None:
    # coreutils `timeout` sends SIGTERM to its child, then to the child's whole
    # process group: rigd run gets two at once. Both, and one more while it
    # drains, are one request for a clean stop; only a later Ctrl-C forces.
    (tmp_path / "draining.yaml").write_text(PIPELINE)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rigd", "run", "draining.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    with proc:
        assert proc.stderr is not None
        assert proc.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        wait_until(lambda: any("camera.frames:" in line for line in lines), timeout=60)
        workers = workers_of(proc.pid)
        assert len(workers) >= 2  # the camera, the reader, the recorder
        os.killpg(proc.pid, signal.SIGTERM)
        os.killpg(proc.pid, signal.SIGTERM)
        wait_until(lambda: any("Ctrl-C again forces" in line for line in lines), timeout=60)
        # The slow reader drains 32 frames at 10 a second: still stopping.
        os.killpg(proc.pid, signal.SIGTERM)
        out = proc.stdout.read()
        proc.wait(timeout=60)
        reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 130, err
    assert "forced stop" not in err
    assert "stopped after" in out
    (file,) = sorted(tmp_path.glob("rigd-data/*.h5"))
    summary = inspect_run(file)
    assert summary.run_state == "complete"
    (camera,) = summary.streams
    assert camera.frames > 0
    assert camera.dropped == 0
    assert not [pid for pid in workers if os.path.exists(f"/proc/{pid}")]
    assert not workers_of(proc.pid)
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"rigd-{proc.pid}-")]


def test_a_daemon_given_sighup_then_sigterm_stops_cleanly_and_exits_0(tmp_path: Path) -> None:
    # `rigd serve` (and `rigd run --console`, which serves): a SIGHUP (its
    # terminal closed) ended it at once, and a second SIGTERM exited at once
    # (status 1, the run file left to repair).
    d = Daemon(tmp_path, allowed_modules=["rigd", "tests.pipeline"])
    try:
        d.load(PIPELINE)
        run = d.client.post("/v1/runs", json={"run_id": "twice"}).json()
        d.wait_for_frames(20)
        os.kill(d.pid, signal.SIGHUP)
        wait_until(lambda: "running -> stopping" in d.output(), timeout=30)
        # The slow reader drains 32 frames at 10 a second: still stopping.
        os.kill(d.pid, signal.SIGTERM)
        assert d.terminate(timeout=60) == 0, d.output()
        assert "exiting at once" not in d.output()
        d.assert_nothing_left()
    finally:
        d.stop()
    assert inspect_run(run["files"][0]).run_state == "complete"


def test_a_ctrl_c_after_a_daemons_sigterm_still_forces(tmp_path: Path) -> None:
    d = Daemon(tmp_path, allowed_modules=["rigd", "tests.pipeline"])
    try:
        d.load(PIPELINE)
        d.client.post("/v1/runs", json={"run_id": "forced"})
        d.wait_for_frames(20)
        os.kill(d.pid, signal.SIGTERM)
        wait_until(lambda: "running -> stopping" in d.output(), timeout=30)
        os.kill(d.pid, signal.SIGINT)  # while the slow reader drains
        assert d.terminate(timeout=60) == 1, d.output()
        assert "second SIGINT: exiting at once" in d.output()
        wait_until(lambda: not workers_of(d.pid), timeout=30, what="the workers to exit")
    finally:
        d.stop()
