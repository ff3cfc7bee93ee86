"""Two ``rigd run`` with one run id at the same moment: the id is claimed at once
(its log, created locked), and the second is refused in one line, leaving the
first run's files alone and nothing of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from rigd.storage import inspect_run
from tests.helpers import session_files, wait_until
from tests.service.test_run import no_rings_of
from tests.service.test_run_signals import workers_of
from tests.service.test_run_stops import ROOT, Run, only_file

SHORT = (
    "name: short\n"
    "actors:\n"
    "  - {name: camera, class: rigd.pipeline.SimulatedCamera,"
    " options: {shape: [8, 8], fps: 200, n_frames: 40}}\n"
    "record: [camera.frames]\n"
)


def full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is full: a process given its write end as stderr stops
    at its first write there, until the read end is drained."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    try:
        while True:
            os.write(write, b"\0" * 4096)
    except BlockingIOError:
        pass
    os.set_blocking(write, True)
    return read, write


def test_a_second_rigd_run_with_a_run_id_in_use_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "short.yaml").write_text(SHORT)
    log = tmp_path / "rigd-data" / "same.log"
    # The first run stops at its first line on stderr ("starting pipeline"): it has
    # checked the id, and has started nothing. Before, its log did not exist yet,
    # so a second run with the id passed the same check: both ran, into one log,
    # or the second met the first's run file (a traceback).
    read, write = full_pipe()
    first = subprocess.Popen(
        [sys.executable, "-m", "rigd", "run", "--run-id", "same", "short.yaml"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=write,
        text=True,
    )
    os.close(write)
    drained: list[bytes] = []
    try:
        wait_until(
            lambda: log.exists() or blocked_writing(first.pid),
            timeout=60,
            what="the first run to check its run id",
        )
        second = Run(tmp_path, "--run-id", "same", "short.yaml")
        status, out, err = second.end()
        assert status == 2, err
        assert out == ""
        (line,) = err.splitlines()
        assert line.startswith("rigd run: run id 'same' is in use by another rigd run"), line
        assert "give another --run-id, or wait for that run to end" in line
        assert "nothing was started" in line
        # Nothing of its own left, and the first run's log untouched.
        assert no_rings_of(second.pid)
        assert not session_files(second.pid)
        assert not workers_of(second.pid)
        assert sorted((tmp_path / "rigd-data").iterdir()) == [log]
        assert log.stat().st_size == 0
    finally:
        reader = threading.Thread(target=lambda: drained.extend(read_all(read)), daemon=True)
        reader.start()
    out, _ = first.communicate(timeout=120)
    reader.join(timeout=30)
    assert first.returncode == 0, b"".join(drained)[-3000:].decode(errors="replace")
    assert "run same: stopped after" in out
    summary = inspect_run(only_file(tmp_path))
    assert (summary.run_id, summary.run_state, summary.frames) == ("same", "complete", 40)
    lines = log.read_text().splitlines()
    assert sum("pipeline short running (run same)" in x for x in lines) == 1, lines
    assert no_rings_of(first.pid)


def blocked_writing(pid: int) -> bool:
    """Whether process ``pid`` waits in a write to a full pipe (its kernel wait channel)."""
    try:
        return "pipe_write" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def read_all(fd: int) -> list[bytes]:
    """Everything read from ``fd`` until its end (then closed)."""
    chunks = []
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read1(65536):
            chunks.append(chunk)
    return chunks
