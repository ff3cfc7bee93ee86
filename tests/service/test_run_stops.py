"""``rigd run`` stopped by SIGHUP, by a SIGTERM to it and its actors at once (systemd's
``KillMode=control-group``), by a Ctrl-C behind a hung reader; and a failed start,
which leaves its run id free."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rigd.storage import inspect_run, remove_stale_rings
from tests.helpers import wait_until
from tests.service.test_run_signals import workers_of

ROOT = Path(__file__).resolve().parents[2]

CAMERA = (
    "name: long\n"
    "actors:\n"
    "  - {name: camera, class: rigd.pipeline.SimulatedCamera,"
    " options: {shape: [32, 32], fps: 200, n_frames: 100000, overflow: block}}\n"
)
RECORDED = CAMERA + "record: [camera.frames]\n"


class Run:
    """``rigd run ARGS`` in its own process group, its stderr read as it comes."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rigd", "run", *args],
            cwd=cwd,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            process_group=0,
        )
        self.pid = self.proc.pid
        self.lines: list[str] = []
        assert self.proc.stderr is not None
        stderr = self.proc.stderr
        self._reader = threading.Thread(target=lambda: self.lines.extend(stderr), daemon=True)
        self._reader.start()

    def said(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> None:
        wait_until(lambda: self.said(text), timeout=timeout, what=repr(text))

    def end(self, timeout: float = 60) -> tuple[int, str, str]:
        """Its exit status, stdout and stderr, once it has exited."""
        assert self.proc.stdout is not None
        out = self.proc.stdout.read()
        self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        self.proc.stdout.close()
        assert self.proc.stderr is not None
        self.proc.stderr.close()
        return self.proc.returncode, out, "".join(self.lines)


def only_file(cwd: Path) -> Path:
    (file,) = sorted(cwd.glob("rigd-data/*.h5"))
    return file


def nothing_left_of(pid: int, workers: list[int]) -> None:
    wait_until(
        lambda: not [w for w in workers if os.path.exists(f"/proc/{w}")],
        timeout=30,
        what="the actor processes to end",
    )
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"rigd-{pid}-")]


def frames_in(cwd: Path) -> int:
    """The frames the run file in ``cwd`` holds so far (0 before it exists)."""
    files = sorted(cwd.glob("rigd-data/*.h5"))
    if not files:
        return 0
    try:
        return sum(s.frames for s in inspect_run(files[0]).streams)
    except (OSError, ValueError):  # still being made
        return 0


def test_a_sighup_stops_rigd_run_cleanly_as_sigterm_does(tmp_path: Path) -> None:
    # A closed terminal or a lost SSH session: rigd run died at once (status
    # 129), its file left recording and its ring in /dev/shm. Its terminal is
    # gone too: every write to it fails, and the stop must go on regardless.
    (tmp_path / "long.yaml").write_text(RECORDED)
    proc = subprocess.Popen(
        [sys.executable, "-m", "rigd", "run", "--run-id", "hup1", "long.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
    )
    wait_until(lambda: frames_in(tmp_path) > 0, timeout=60, what="frames in the run file")
    workers = workers_of(proc.pid)
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the terminal goes away
    proc.stderr.close()
    os.kill(proc.pid, signal.SIGHUP)
    assert proc.wait(timeout=60) == 130
    summary = inspect_run(only_file(tmp_path))
    assert summary.run_state == "complete"
    assert summary.streams[0].frames > 0
    assert not list(tmp_path.glob("rigd-data/*.reserve"))
    nothing_left_of(proc.pid, workers)


def test_a_sigterm_to_rigd_run_and_its_actors_at_once_seals_the_file_complete(
    tmp_path: Path,
) -> None:
    # `kill -TERM PID $(pgrep -P PID)`, as systemd's KillMode=control-group stops
    # a unit: the actors died under the stop ("stopping 'camera' failed") and
    # the file was only recovered.
    (tmp_path / "long.yaml").write_text(RECORDED)
    run = Run(tmp_path, "long.yaml")
    run.wait_for("camera.frames:")
    workers = workers_of(run.pid)
    assert len(workers) >= 2  # the camera, the recorder
    for pid in [run.pid, *workers]:
        os.kill(pid, signal.SIGTERM)
    status, out, err = run.end()
    assert status == 130, err
    assert "failed" not in err
    assert "SIGTERM deferred" in err
    assert "stopped after" in out
    assert inspect_run(only_file(tmp_path)).run_state == "complete"
    nothing_left_of(run.pid, workers)


def test_an_actor_whose_rigd_run_is_gone_still_ends_after_a_deferred_sigterm(
    tmp_path: Path,
) -> None:
    (tmp_path / "long.yaml").write_text(RECORDED)
    run = Run(tmp_path, "long.yaml")
    run.wait_for("camera.frames:")
    workers = workers_of(run.pid)
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    run.wait_for("SIGTERM deferred", timeout=30)
    assert all(os.path.exists(f"/proc/{pid}") for pid in workers)  # deferred, not ended
    os.kill(run.pid, signal.SIGKILL)
    status, _, _ = run.end()
    assert status == -signal.SIGKILL
    wait_until(
        lambda: not [w for w in workers if os.path.exists(f"/proc/{w}")],
        timeout=30,
        what="the actors of the killed rigd run to end",
    )
    # Its ring, the dead supervisor's, goes at the next start, as after any SIGKILL.
    remove_stale_rings()
    assert not [n for n in os.listdir("/dev/shm") if n.startswith(f"rigd-{run.pid}-")]


def test_the_first_ctrl_c_behind_a_hung_reader_says_what_it_waits_for(tmp_path: Path) -> None:
    # It waited 60 s in silence, then said "hanger did not drain within 60 s".
    (tmp_path / "hung.yaml").write_text(
        CAMERA.replace(", overflow: block", "")  # a camera is not held back by its reader
        + "  - {name: hanger, class: tests.service.run_actors.Hanger}\n"
        + "links:\n"
        + "  - {link: camera.frames -> hanger.frames, slots: 64}\n"
        + "record: [camera.frames]\n"
    )
    run = Run(tmp_path, "hung.yaml")
    run.wait_for("camera.frames:")
    workers = workers_of(run.pid)
    os.kill(run.pid, signal.SIGINT)
    run.wait_for("up to 60 s in all", timeout=30)
    run.wait_for("waiting for 'hanger' to drain its inputs", timeout=30)
    (line,) = [line for line in run.lines if "waiting for 'hanger'" in line]
    assert "s more at most" in line
    assert "Ctrl-C again forces the stop" in line
    assert not run.said("did not drain")  # it is said before the wait, not after it
    os.kill(run.pid, signal.SIGINT)
    status, _, err = run.end()
    assert status == 130, err
    assert "forced stop" in err
    assert inspect_run(only_file(tmp_path)).run_state in ("recovered", "complete")
    nothing_left_of(run.pid, workers)


@contextmanager
def port_held() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that another program listens on."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def test_a_start_that_failed_leaves_no_file_and_its_run_id_free(tmp_path: Path) -> None:
    # A taken port failed the start, yet left z3.log and an aborted 0-frame
    # file, and the retry was refused: "run id 'z3' was used before here".
    with port_held() as port:
        (tmp_path / "zmq2.yaml").write_text(
            "name: zmq2\n"
            "actors:\n"
            "  - {name: camera, class: rigd.pipeline.ZmqSource, options: {address:"
            f' "tcp://127.0.0.1:{port}", bind: true, shape: [8, 8], dtype: uint8}}}}\n'
            "record: [camera.frames]\n"
        )
        status, _, err = Run(tmp_path, "--run-id", "z3", "zmq2.yaml").end()
        assert status == 1, err
        assert "address already in use" in err.lower()
        assert "so run id 'z3' can be used again" in err
        assert "recovered" not in err
        assert list((tmp_path / "rigd-data").iterdir()) == []

        status, _, err = Run(tmp_path, "--run-id", "z3", "zmq2.yaml").end()
        assert status == 1, err  # not refused (2): the port is still taken
        assert "was used before" not in err
    run = Run(tmp_path, "--run-id", "z3", "zmq2.yaml")
    run.wait_for("rigd run: running")
    run.proc.send_signal(signal.SIGTERM)
    status, out, err = run.end()
    assert "run z3: stopped after" in out, err
    assert status == 130, err
    summary = inspect_run(only_file(tmp_path))
    assert (summary.run_id, summary.run_state) == ("z3", "complete")
    assert (tmp_path / "rigd-data" / "z3.log").exists()
