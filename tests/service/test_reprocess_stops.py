"""``rigd reprocess`` stops cleanly and never lies: Ctrl-C, SIGTERM, SIGHUP, a timeout, an
output name too long, a killed job's rings, ``replay_file``'s hostile arguments."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import signal
import subprocess
import sys
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.pipeline import replay_file
from rigd.service._reprocess import reprocess
from rigd.storage import RunWriter, StreamSpec, check_sealed
from tests.helpers import SHM, wait_until
from tests.service.stall_actors import LATE_PIPELINE, STALL_PIPELINE
from tests.service.test_reprocess import PIPELINE

ROOT = Path(__file__).resolve().parents[2]


def write_run(path: Path, first_id: int, count: int) -> None:
    """A sealed run file of ``count`` 8x12 uint16 frames, ids from ``first_id``."""
    spec = StreamSpec("camera", (8, 12), np.dtype(np.uint16))
    with RunWriter(path, [spec], run_id="source") as writer:
        for k in range(count):
            frame = np.full((8, 12), k, np.uint16)
            writer.write("camera", frame, first_id + k, 1_700_000_000_000_000_000 + k)


def start_reprocess(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rigd", "reprocess", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def rings_of(pid: int) -> list[str]:
    return [name for name in os.listdir(SHM) if name.startswith(f"rigd-{pid}-")]


@pytest.mark.parametrize(
    "stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["SIGINT", "SIGTERM", "SIGHUP"]
)
def test_an_interrupt_marks_the_file_being_replayed_failed_prints_the_table_and_exits_130(
    tmp_path: Path, stop: signal.Signals
) -> None:
    # Was: Ctrl-C left the truncated output "complete" and a raw traceback; SIGTERM
    # killed the job on the spot (the output unsealed, its rings left in /dev/shm);
    # SIGHUP (the terminal closed) too, exit status 129.
    marker = tmp_path / "stalled"
    marker.mkdir()
    pipeline = tmp_path / "stall.yaml"
    pipeline.write_text(STALL_PIPELINE.format(marker=marker))
    write_run(tmp_path / "first.h5", 0, 20)
    write_run(tmp_path / "second.h5", 990, 20)  # hangs at its 11th frame
    write_run(tmp_path / "third.h5", 0, 20)
    files = [str(tmp_path / f"{name}.h5") for name in ("first", "second", "third")]

    with start_reprocess(tmp_path, str(pipeline), *files, "--out", str(tmp_path / "out")) as job:
        wait_until(lambda: any(marker.iterdir()), timeout=60, what="the second file to hang")
        assert [p.name for p in marker.iterdir()] == [str(job.pid)]  # in the job's process
        job.send_signal(stop)
        out, err = job.communicate(timeout=60)

    assert job.returncode == 130, err
    assert "Traceback" not in err
    assert f"stopped by {stop.name}" in err
    rows = {row.split()[0]: row for row in out.splitlines() if row.split()[0].endswith(".h5")}
    assert rows["first.h5"].split()[1] == "done"
    assert "interrupted;" in rows["second.h5"]
    assert "marked run_state: failed" in rows["second.h5"]
    assert "not started" in rows["third.h5"]
    assert "1 done, 0 failed, 1 interrupted, 1 not started" in out
    with h5py.File(tmp_path / "out" / "second-reprocessed.h5", "r") as f:
        assert f.attrs["run_state"] == "failed"
        assert "KeyboardInterrupt" in f.attrs["failure"]
        kept = len(f["camera/frame_id"]) + len(f["stalled/frame_id"])
    assert kept > 0
    assert rows["second.h5"].split()[2] == str(kept)  # was: 0, though the file holds frames
    check_sealed(tmp_path / "out" / "second-reprocessed.h5")  # raises if not
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "first-reprocessed.h5",
        "second-reprocessed.h5",
    ]
    assert rings_of(job.pid) == []


def test_a_sighup_after_its_terminal_closed_still_seals_the_file_and_exits_130(
    tmp_path: Path,
) -> None:
    # A terminal that is gone fails every write (EIO): the table's print raised
    # OSError, and the job ended with a traceback nobody could read, exit status 1.
    marker = tmp_path / "stalled"
    marker.mkdir()
    pipeline = tmp_path / "stall.yaml"
    pipeline.write_text(STALL_PIPELINE.format(marker=marker))
    write_run(tmp_path / "hangs.h5", 990, 20)  # at its 11th frame
    master, terminal = pty.openpty()
    closed = threading.Event()

    def read_terminal() -> None:  # the terminal's side, until it is closed
        while not closed.is_set():
            if select.select([master], [], [], 0.05)[0]:
                with contextlib.suppress(OSError):
                    os.read(master, 4096)
        os.close(master)

    reader = threading.Thread(target=read_terminal)
    reader.start()
    try:
        job = subprocess.Popen(
            [sys.executable, "-m", "rigd", "reprocess", str(pipeline), "hangs.h5"],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=terminal,
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    finally:
        os.close(terminal)
    try:
        wait_until(lambda: any(marker.iterdir()), timeout=60, what="the file to hang")
        closed.set()
        reader.join(timeout=10)
        job.send_signal(signal.SIGHUP)  # as the kernel does when the terminal goes
        job.wait(timeout=60)
    finally:
        closed.set()
        if job.poll() is None:
            job.kill()
            job.wait()

    assert job.returncode == 130
    output = tmp_path / "rigd-reprocessed" / "hangs-reprocessed.h5"
    check_sealed(output)  # raises if not
    with h5py.File(output, "r") as f:
        assert f.attrs["run_state"] == "failed"
    assert rings_of(job.pid) == []


def test_a_file_past_its_timeout_is_a_failed_row_naming_the_option_and_its_kept_frames(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "stalled"
    marker.mkdir()
    pipeline = tmp_path / "stall.yaml"
    pipeline.write_text(STALL_PIPELINE.format(marker=marker))
    write_run(tmp_path / "hangs.h5", 990, 20)  # at its 11th frame
    write_run(tmp_path / "fine.h5", 0, 20)
    with start_reprocess(
        tmp_path,
        *(str(pipeline), str(tmp_path / "hangs.h5"), str(tmp_path / "fine.h5")),
        *("--out", str(tmp_path / "out"), "--timeout", "1.5"),
    ) as job:
        out, err = job.communicate(timeout=60)

    assert job.returncode == 1, err
    (hung,) = [line for line in out.splitlines() if line.startswith("hangs.h5")]
    assert "failed" in hung
    assert "TimeoutError: the replay did not end within its timeout of 1.5 s" in hung
    assert "--timeout SECONDS" in hung
    assert "1 done, 1 failed" in out
    with h5py.File(tmp_path / "out" / "hangs-reprocessed.h5", "r") as f:
        assert f.attrs["run_state"] == "failed"
        assert "timeout" in f.attrs["failure"]
        # Was: a failed output said nothing of the run it came from (a done one does).
        with h5py.File(tmp_path / "hangs.h5", "r") as source:
            assert f.attrs["reprocessed_from_run_id"] == source.attrs["run_id"]
        kept = len(f["camera/frame_id"]) + len(f["stalled/frame_id"])
    assert kept > 0
    assert hung.split()[2] == str(kept)  # was: 0, though the kept file holds frames
    assert float(hung.split()[3]) >= 1.5
    with h5py.File(tmp_path / "out" / "fine-reprocessed.h5", "r") as f:
        assert f.attrs["run_state"] == "complete"
        assert len(f["stalled/frame_id"]) == 20


@pytest.mark.parametrize("bad", ["0", "-1", "nan", "inf", "soon"])
def test_a_timeout_that_is_not_a_number_of_seconds_is_refused_naming_the_option(
    tmp_path: Path, bad: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from rigd.service._cli import main

    with pytest.raises(SystemExit) as exited:
        main(["reprocess", "p.yaml", "run.h5", "--out", str(tmp_path / "out"), "--timeout", bad])

    assert exited.value.code == 2
    assert f"--timeout: takes seconds, a number > 0 (e.g. 600), got {bad!r}" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


def test_an_output_name_too_long_is_a_failed_row_and_the_other_files_go_on(
    tmp_path: Path,
) -> None:
    # Was: [Errno 36] File name too long from the driver's check: exit 2, nothing done.
    pipeline = tmp_path / "rowsums.yaml"
    pipeline.write_text(PIPELINE)
    long = tmp_path / ("b" * 245 + ".h5")  # its output, b...b-reprocessed.h5, is 260 bytes
    write_run(long, 0, 5)
    write_run(tmp_path / "x.h5", 0, 5)

    results = reprocess(pipeline, [str(tmp_path / "x.h5"), str(long)], tmp_path / "out")

    assert [r.state for r in results] == ["done", "failed"]
    assert "File name too long" in (results[1].error or "")
    assert "give 'bbb" in (results[1].error or "")
    assert "a shorter name" in (results[1].error or "")
    # replay_file itself (a Ray task's) says so as its row too, never raising.
    row = replay_file(PIPELINE, str(long), str(tmp_path / "out2"))
    assert row["state"] == "failed"
    assert "File name too long" in row["error"]
    assert "shorter name" in row["error"]


@pytest.mark.parametrize("run_file", [None, b"run.h5", 3])
def test_replay_file_never_raises_for_a_run_file_that_is_not_a_path(
    tmp_path: Path, run_file: object
) -> None:
    row = replay_file(PIPELINE, run_file, str(tmp_path / "out"))  # type: ignore[arg-type]

    assert row["state"] == "failed"
    assert row["error"].startswith("TypeError: run_file must be a run file's path (str or ")
    assert type(run_file).__name__ in row["error"]
    assert not (tmp_path / "out").exists()


def test_replay_file_takes_a_pathlib_path_and_refuses_a_bad_timeout(tmp_path: Path) -> None:
    write_run(tmp_path / "x.h5", 0, 5)

    done = replay_file(PIPELINE, tmp_path / "x.h5", str(tmp_path / "out"))
    refused = replay_file(PIPELINE, tmp_path / "x.h5", str(tmp_path / "out2"), timeout=0)

    assert done["state"] == "done", done["error"]
    assert done["file"] == str(tmp_path / "x.h5")
    assert refused["state"] == "failed"
    assert "timeout must be a number of seconds > 0, got 0" in refused["error"]


def test_the_rings_of_a_killed_job_are_removed_when_the_next_job_starts(tmp_path: Path) -> None:
    marker = tmp_path / "stalled"
    marker.mkdir()
    pipeline = tmp_path / "stall.yaml"
    pipeline.write_text(STALL_PIPELINE.format(marker=marker))
    write_run(tmp_path / "hangs.h5", 1000, 20)
    write_run(tmp_path / "fine.h5", 0, 5)
    with start_reprocess(
        tmp_path, str(pipeline), str(tmp_path / "hangs.h5"), "--out", str(tmp_path / "out")
    ) as job:
        wait_until(lambda: any(marker.iterdir()), timeout=60, what="the replay to hang")
        left = rings_of(job.pid)
        job.kill()
        job.communicate(timeout=60)
    assert left, "the killed job had no ring to leave"
    assert rings_of(job.pid) == left  # kill -9: nothing removed them

    (result,) = reprocess(pipeline, [str(tmp_path / "fine.h5")], tmp_path / "out2")

    assert result.state == "done", result.error
    assert rings_of(job.pid) == []


def test_a_step_the_stop_outlives_is_not_logged_as_the_actors_error(tmp_path: Path) -> None:
    # Was: Ctrl-C logged "ERROR ... LateStep.run_step raised: AttributeError: no output
    # 'frames'": the step in flight found its outputs removed by the stop. The stop's
    # grace for a step is shortened here (10 s each) so the test need not wait it out.
    marker = tmp_path / "held"
    marker.mkdir()
    pipeline = tmp_path / "late.yaml"
    pipeline.write_text(LATE_PIPELINE.format(marker=marker))
    write_run(tmp_path / "run.h5", 0, 20)
    argv = ["rigd", "reprocess", str(pipeline), "run.h5", "--out", "out"]
    code = (
        "import sys, rigd.pipeline._inline as inline, rigd.actors._pipeline_actor as actor; "
        "inline._STOP_S = actor.ACTOR_STOP_GRACE_S = 0.5; from rigd.service._cli import main; "
        f"sys.argv = {argv!r}; main()"
    )
    with subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as job:
        wait_until(lambda: any(marker.iterdir()), timeout=60, what="the step to hold a frame")
        job.send_signal(signal.SIGINT)
        out, err = job.communicate(timeout=60)

    assert job.returncode == 130, err
    assert "1 interrupted" in out
    assert "run_step raised" not in err
    assert " ERROR " not in err
    assert "WARNING:" not in out  # nor counted among the file's step errors
    assert rings_of(job.pid) == []
