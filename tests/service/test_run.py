"""``rigd run``: the bundled demo, Ctrl-C (clean, then forced), bad files, the example."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import h5py
import numpy as np
import pytest
import zmq

from rigd.storage import inspect_run
from tests.helpers import wait_until
from tests.service.daemon import rigd_cli_in

ROOT = Path(__file__).resolve().parents[2]
RIGD = [sys.executable, "-m", "rigd"]


def rigd_run(*args: str, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [*RIGD, "run", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,  # its own group, as `timeout` or a shell job gives it
    )


def run_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("rigd-data/*.h5"))


def no_rings_of(pid: int) -> bool:
    return not [n for n in os.listdir("/dev/shm") if n.startswith(f"rigd-{pid}-")]


@pytest.mark.slow
def test_rigd_run_with_no_argument_records_the_demo(tmp_path: Path) -> None:
    with rigd_run(cwd=tmp_path) as proc:
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    # A camera is never held back: a frame the recorder had no room for is
    # dropped, and the report and the file's ledger say so (ring_full).
    # n_frames counts the frames delivered: 2000 recorded, the drops on top.
    taken = []
    for stream in ("camera", "stats"):
        found = re.search(rf"{stream}: (\d+) frames recorded, (\d+) dropped", out)
        assert found, out
        taken.append(int(found[1]) + int(found[2]))
        assert int(found[1]) == 2000 if stream == "camera" else int(found[1]) <= 2000
    assert taken[0] == taken[1]  # every id the camera took, in both streams
    (file,) = run_files(tmp_path)
    assert f"file: {file}" in out
    summary = inspect_run(file)
    assert summary.run_state == "complete"
    camera = {s.name: s for s in summary.streams}["camera"]
    assert camera.frames == 2000
    assert camera.shape == (512, 512)
    assert {reason for _, _, reason in camera.ledger} <= {"ring_full"}
    # Paced by its own clock, not by its readers: 200 ids a second.
    ids = camera.frames + camera.dropped - 1
    assert 150 < ids / camera.duration_s < 250
    # Progress went to stderr: frames per link, as plain lines (not a terminal).
    assert "camera.frames:" in err
    assert no_rings_of(proc.pid)


def interrupt(
    pipeline: Path, cwd: Path, times: int, sig: int = signal.SIGINT, group: bool = False
) -> tuple[int, str, str, int]:
    """Run ``rigd run PIPELINE``, press Ctrl-C ``times`` once frames flow (the
    second after it says it is stopping); return status, stdout, stderr, pid."""
    with rigd_run(str(pipeline), cwd=cwd) as proc:
        assert proc.stderr is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
        reader.start()
        wait_until(lambda: any("camera.frames:" in line for line in lines), timeout=60)
        if group:
            os.killpg(proc.pid, sig)  # as `timeout` does: the whole process group
        else:
            proc.send_signal(sig)
        if times == 2:
            wait_until(lambda: any("Ctrl-C again forces" in line for line in lines), timeout=60)
            proc.send_signal(signal.SIGINT)
        out = proc.stdout.read() if proc.stdout else ""
        proc.wait(timeout=60)
        reader.join(timeout=10)
    return proc.returncode, out, "".join(lines), proc.pid


CAMERA = (
    "name: forever\n"
    "actors:\n"
    "  - {name: camera, class: rigd.pipeline.SimulatedCamera,"
    " options: {shape: [64, 64], fps: 200, overflow: block}}\n"
)


def test_ctrl_c_stops_cleanly_and_a_second_forces(tmp_path: Path) -> None:
    pipeline = tmp_path / "forever.yaml"
    pipeline.write_text(CAMERA + "record: [camera.frames]\n")
    # One Ctrl-C: a clean stop with a sealed file.
    status, out, err, pid = interrupt(pipeline, tmp_path, times=1)
    assert status == 130, err
    assert "stopped after" in out
    (file,) = run_files(tmp_path)
    summary = inspect_run(file)
    assert summary.run_state == "complete"
    (camera,) = summary.streams
    assert camera.frames > 0
    assert camera.dropped == 0
    assert no_rings_of(pid)
    file.unlink()

    # SIGTERM (systemd, kill; `timeout` sends it to the whole process group): the
    # same clean stop, the actors stopped in order by the driver.
    status, out, err, pid = interrupt(pipeline, tmp_path, times=1, sig=signal.SIGTERM, group=True)
    assert status == 130, err
    (file,) = run_files(tmp_path)
    assert inspect_run(file).run_state == "complete"
    assert no_rings_of(pid)
    file.unlink()

    # Two Ctrl-C: the second forces while a slow lossless reader drains.
    pipeline.write_text(
        CAMERA
        + "  - {name: slow, class: tests.pipeline.actors.SlowViewer, options: {delay: 0.05}}\n"
        + "links:\n"
        + "  - {link: camera.frames -> slow.frames, slots: 256}\n"
        + "record: [camera.frames]\n"
    )
    status, out, err, pid = interrupt(pipeline, tmp_path, times=2)
    assert status == 130, err
    assert "forced stop" in err
    (file,) = run_files(tmp_path)
    # The forced stop killed the recorder; its file was repaired and kept.
    assert inspect_run(file).run_state in ("recovered", "complete")
    assert inspect_run(file).streams[0].frames > 0
    assert no_rings_of(pid)


def test_a_bad_pipeline_file_exits_2_and_names_the_problem(tmp_path: Path) -> None:
    pipeline = tmp_path / "bad.yaml"
    pipeline.write_text("actors:\n  - name: camera\n    class: rigd.pipeline.NoSuchCamera\n")
    with rigd_run(str(pipeline), cwd=tmp_path) as proc:
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"{pipeline}, line 3, actors[0].class" in err
    assert "nothing was started" in err
    assert not (tmp_path / "rigd-data").exists()
    with rigd_run(str(tmp_path / "missing.yaml"), cwd=tmp_path) as proc:
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "no pipeline file" in err


def test_the_improv_style_example_acquires_processes_shows_and_records(tmp_path: Path) -> None:
    example = (ROOT / "examples/improv_demo/pipeline.yaml").read_text()
    pipeline = tmp_path / "example.yaml"
    pipeline.write_text(example.replace("n_frames: 1000", "n_frames: 300").replace("5557", "5561"))
    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.setsockopt(zmq.SUBSCRIBE, b"frames")
    socket.setsockopt(zmq.RCVTIMEO, 30_000)
    socket.connect("tcp://127.0.0.1:5561")
    try:
        with rigd_run(str(pipeline), cwd=tmp_path) as proc:
            topic, header, data = socket.recv_multipart()
            out, err = proc.communicate(timeout=120)
    finally:
        socket.close(linger=0)
    assert proc.returncode == 0, err
    meta = json.loads(header)
    assert topic == b"frames"
    assert meta["shape"] == [256, 256]
    image = np.frombuffer(data, dtype=meta["dtype"]).reshape(meta["shape"])
    assert image.max() > 500  # the spot is there
    line = next(line for line in out.splitlines() if line.startswith("  file: "))
    file = Path(line.removeprefix("  file: "))
    assert file.parent == tmp_path / "rigd-data"
    with h5py.File(file, "r") as f:
        frames = f["acquirer/frames"]
        positions = f["processor_position/frames"][:]
        assert len(frames) == 300
        assert len(positions) == 300
        # The tracked position is the spot's: its brightest pixel.
        for k in (0, 150, 299):
            y, x = np.unravel_index(int(np.argmax(frames[k])), frames.shape[1:])
            assert abs(positions[k][0] - y) < 3
            assert abs(positions[k][1] - x) < 3
        assert f.attrs["experiment"] == "improv-style demo"


def test_an_actor_that_fails_to_set_up_stops_the_start_cleanly(tmp_path: Path) -> None:
    pipeline = tmp_path / "badsetup.yaml"
    pipeline.write_text(
        CAMERA + "  - {name: viewer, class: rigd.pipeline.ZmqPublisher,"
        " options: {address: 'nonsense://here'}}\n"
        + "links:\n  - {link: camera.frames -> viewer.frames, policy: latest}\n"
    )
    with rigd_run(str(pipeline), cwd=tmp_path) as proc:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "pipeline 'forever' could not start" in err
    assert "Protocol not supported" in err or "nonsense" in err
    assert no_rings_of(proc.pid)


def test_rigd_run_warns_when_a_camera_drops_on_a_full_ring(tmp_path: Path) -> None:
    # A camera at 200 fps into a lossless reader that takes 50 ms a frame:
    # its ring fills, the camera drops, and the run says so.
    path = tmp_path / "slow.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: slow
            actors:
              - name: camera
                class: rigd.pipeline.SimulatedCamera
                options: {shape: [16, 16], fps: 200, n_frames: 120}
              - name: viewer
                class: tests.pipeline.actors.SlowViewer
                options: {delay: 0.05}
            links:
              - {link: camera.frames -> viewer.frames, slots: 2}
            """
        )
    )
    result = rigd_cli_in(tmp_path, "run", str(path))
    assert result.returncode == 0, result.stderr
    # The camera is not held back: it drops, and the run says where and why.
    assert "frame(s) dropped at camera.frames (" in result.stderr
    assert "ring_full: its ring was full" in result.stderr
    assert "ring full)" in result.stderr


def test_rigd_run_says_why_frames_are_missing_drops_by_reason_or_a_slow_source(
    tmp_path: Path,
) -> None:
    # lossy keeps its 100 fps but its driver drops every 4th frame (incomplete):
    # its written rate is 75/s, and the run says it dropped, not that it is slow.
    # held is held back by a lossless reader (overflow: block): truly slow.
    path = tmp_path / "why.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: why
            actors:
              - name: lossy
                class: tests.service.actors.LossyCamera
                options: {fps: 100, n_frames: 500, drop_every: 4}
              - name: held
                class: rigd.pipeline.SimulatedCamera
                options: {shape: [8, 8], fps: 100, n_frames: 100, overflow: block}
              - name: viewer
                class: tests.pipeline.actors.SlowViewer
                options: {delay: 0.05}
              - name: sink
                class: tests.service.actors.Sink
            links:
              - {link: held.frames -> viewer.frames, slots: 2}
              - {link: lossy.frames -> sink.frames}
            """
        )
    )
    result = rigd_cli_in(tmp_path, "run", str(path))
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "warning" in line]
    dropped = [w for w in warnings if "dropped at lossy.frames" in w]
    assert dropped, result.stderr
    assert all(re.search(r"\(\d+ incomplete\)", w) for w in dropped), dropped
    assert "could not deliver them" in dropped[0]
    slow = [w for w in warnings if "below its" in w]
    assert [w.split("warning: ")[1].split()[0] for w in slow] == ["held"], warnings
    assert not any("dropped at held" in w for w in warnings), warnings


def test_a_source_that_finished_is_not_warned_of_as_slow_while_its_readers_drain(
    tmp_path: Path,
) -> None:
    # Was: "camera delivers 0.0 frames/s ... below its 100 fps" once its 20 frames
    # were sent, while the viewer took 7 s to read them.
    path = tmp_path / "drain.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: drain
            actors:
              - name: camera
                class: rigd.pipeline.SimulatedCamera
                options: {shape: [8, 8], fps: 100, n_frames: 20}
              - name: viewer
                class: tests.pipeline.actors.SlowViewer
                options: {delay: 0.35}
            links:
              - {link: camera.frames -> viewer.frames, slots: 32}
            """
        )
    )
    result = rigd_cli_in(tmp_path, "run", str(path))
    assert result.returncode == 0, result.stderr
    assert "below its" not in result.stderr, result.stderr
    assert "warning" not in result.stderr, result.stderr


def test_a_run_id_the_rest_api_would_refuse_is_refused_and_nothing_starts(tmp_path: Path) -> None:
    for bad in ("bad/id", "../up", " lead"):
        done = rigd_cli_in(tmp_path, "run", "--run-id", bad, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "nothing was started" in done.stderr
    assert not (tmp_path / "rigd-data").exists()


def test_metadata_the_run_file_cannot_store_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    for bad in ("run_id=5", "NX_class=NXentry"):
        done = rigd_cli_in(tmp_path, "run", "--meta", bad, timeout=60)
        assert done.returncode == 2, done.stderr
        assert "--meta:" in done.stderr
        assert "nothing was started" in done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "rigd-data").exists()


def test_a_run_id_used_before_in_the_data_directory_is_refused_and_nothing_starts(
    tmp_path: Path,
) -> None:
    # Before, the second run's log lines went on in the first run's m12-s3.log.
    path = tmp_path / "short.yaml"
    path.write_text(
        textwrap.dedent(
            """
            name: short
            actors:
              - {name: camera, class: rigd.pipeline.SimulatedCamera,
                 options: {shape: [8, 8], fps: 200, n_frames: 5}}
            record: [camera.frames]
            """
        )
    )
    first = rigd_cli_in(tmp_path, "run", "--run-id", "m12-s3", str(path))
    assert first.returncode == 0, first.stderr
    files = sorted((tmp_path / "rigd-data").iterdir())
    log = (tmp_path / "rigd-data" / "m12-s3.log").read_text()

    again = rigd_cli_in(tmp_path, "run", "--run-id", "m12-s3", str(path))
    assert again.returncode == 2, again.stderr
    assert "run id 'm12-s3' was used before here" in again.stderr
    assert "give another --run-id; nothing was started" in again.stderr
    assert sorted((tmp_path / "rigd-data").iterdir()) == files
    assert (tmp_path / "rigd-data" / "m12-s3.log").read_text() == log
