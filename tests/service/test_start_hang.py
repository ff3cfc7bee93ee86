"""``rigd run`` with an actor whose ``setup`` never returns: a signal ends the
start at once, a timeout names the actor, and the recorder's file is sealed."""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from rigd.storage import inspect_run
from tests.helpers import child_pids, pid_alive, wait_until
from tests.service.daemon import serving
from tests.service.test_run import no_rings_of, rigd_run, run_files

HANG = """\
name: hang
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [8, 8], fps: 100, n_frames: 100}
  - name: stuck
    class: tests.service.hang_actors.HangInSetup
links:
  - {link: camera.frames -> stuck.frames, slots: 16}
record: [camera.frames]
"""


def _sealed_and_alone(cwd: Path) -> None:
    (file,) = run_files(cwd)
    assert inspect_run(file).run_state == "aborted"
    # The writer's space reserve (.<file>.reserve) went with the repair.
    left = {p.name for p in file.parent.iterdir()}
    assert {n for n in left if n.startswith(".") or n.endswith(".reserve")} == set()
    assert file.name in left


def _nothing_left(cwd: Path) -> None:
    # rigd run: a start that recorded nothing removes its aborted file and log,
    # and leaves its run id free (the daemon keeps the file: _sealed_and_alone).
    assert list((cwd / "rigd-data").iterdir()) == []


def test_sigterm_during_a_setup_that_never_returns_stops_the_start_at_once(
    tmp_path: Path,
) -> None:
    pipeline = tmp_path / "hang.yaml"
    pipeline.write_text(HANG)
    with rigd_run(str(pipeline), cwd=tmp_path) as proc:
        lines: list[str] = []
        assert proc.stderr is not None
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        # The recorder made its file in its setup: the stuck one is in its own.
        wait_until(lambda: bool(run_files(tmp_path)), timeout=60, what="the run file")
        workers = child_pids(proc.pid)
        assert workers
        os.kill(proc.pid, signal.SIGTERM)
        out = proc.stdout.read() if proc.stdout else ""
        proc.wait(timeout=20)  # not the 60 s setup timeout
        reader.join(timeout=10)
    err = "".join(lines)
    assert proc.returncode == 130, err
    assert "start interrupted" in err
    assert "failure: the start was interrupted" in out
    assert "nothing was recorded; removed" in err
    assert "(no file kept: nothing was recorded)" in out
    _nothing_left(tmp_path)
    wait_until(lambda: not any(pid_alive(w) for w in workers), timeout=10, what="workers gone")
    assert no_rings_of(proc.pid)


def test_a_setup_that_outlasts_the_timeout_fails_the_start_naming_the_actor(
    tmp_path: Path,
) -> None:
    pipeline = tmp_path / "hang.yaml"
    pipeline.write_text(HANG + "run: {setup_timeout_s: 2}\n")
    with rigd_run(str(pipeline), cwd=tmp_path) as proc:
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    assert "actor(s) 'stuck' did not return from setup within 2 s" in err
    assert "run.setup_timeout_s" in err
    _nothing_left(tmp_path)
    assert no_rings_of(proc.pid)


@pytest.mark.integration
def test_a_daemon_start_whose_setup_times_out_fails_naming_the_actor(tmp_path: Path) -> None:
    with serving(tmp_path, allowed_modules=["rigd", "tests.service"]) as d:
        d.load(HANG + "run: {setup_timeout_s: 2}\n")
        answer = d.client.post("/v1/runs", json={"run_id": "stuck-run"})
        assert answer.status_code in (409, 500), answer.text
        detail = answer.json()["detail"]
        assert "'stuck' did not return from setup within 2 s" in detail
        assert "run.setup_timeout_s" in detail
        assert d.status()["state"] == "failed"
        _sealed_and_alone(d.data_dir)


@pytest.mark.integration
def test_sigterm_to_the_daemon_during_a_setup_that_never_returns_stops_it_cleanly(
    tmp_path: Path,
) -> None:
    # systemd's stop while a start hangs: the daemon ends within its stop
    # timeout (not the 60 s setup timeout), the file sealed, nothing left.
    from tests.service.daemon import Daemon

    d = Daemon(tmp_path, allowed_modules=["rigd", "tests.service"])
    try:
        d.load(HANG)
        answers: list[object] = []

        def start() -> None:
            try:
                answers.append(d.client.post("/v1/runs", json={"run_id": "stuck"}, timeout=120))
            except Exception as exc:  # the daemon goes away mid-request
                answers.append(exc)

        starter = threading.Thread(target=start, daemon=True)
        starter.start()
        wait_until(lambda: bool(run_files(d.data_dir)), timeout=60, what="the run file")
        assert d.terminate(timeout=30) == 0, d.output()
        starter.join(timeout=30)
        assert answers, "the start request never ended"
        d.assert_nothing_left()
        _sealed_and_alone(d.data_dir)
        (journal,) = tmp_path.rglob("runs.jsonl")
        last = json.loads(journal.read_text().splitlines()[-1])
        assert last["state"] == "failed"
        assert "the start was interrupted during setup" in last["failure"]
    finally:
        d.stop()
