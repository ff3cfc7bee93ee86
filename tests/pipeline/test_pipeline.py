"""Pipelines from YAML, end to end, with real actor processes, rings and run files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import rigd
from rigd.pipeline import Pipeline, RunReport, plan_pipeline
from tests.helpers import wait_until
from tests.pipeline.sources import kill_and_await_restart

ACTORS = "tests.pipeline.actors"


def ring_segments() -> list[str]:
    return [n for n in os.listdir("/dev/shm") if n.startswith(f"rigd-{os.getpid()}-ring-")]


@pytest.fixture(autouse=True)
def _no_rings_left() -> Iterator[None]:
    yield
    assert ring_segments() == []


def write(tmp_path: Path, text: str, name: str = "pipeline.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).replace("@DATA@", str(tmp_path / "data")))
    return path


def run(path: Path, timeout: float = 60, **kwargs: Any) -> RunReport:
    pipeline = Pipeline(plan_pipeline(path), **kwargs)
    pipeline.start()
    try:
        assert pipeline.wait(timeout), "the pipeline did not finish in time"
    finally:
        report = pipeline.stop()
    return report


def read_stream(path: str, stream: str) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        group = f[stream]
        return {
            "frames": group["frames"][:],
            "frame_id": group["frame_id"][:],
            "dropped": group["dropped"][:],
            "state": f.attrs["run_state"],
        }


def test_every_frame_of_a_counter_pattern_is_recorded_bit_for_bit(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: counter
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [64, 48], dtype: uint16, n_frames: 700, pattern: counter}
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {directory: "@DATA@"}
        links:
          - {link: camera.frames -> recorder.camera, slots: 8}
        run:
          metadata: {mouse: M12}
        """,
    )
    report = run(path, run_id="bits", metadata={"session": 3})
    assert report.state == "stopped"
    assert report.frames == {"camera": 700}
    assert report.dropped == {"camera": 0}
    (file,) = report.files
    data = read_stream(file, "camera")
    assert data["state"] == "complete"
    np.testing.assert_array_equal(data["frame_id"], np.arange(700))
    expected = np.arange(700, dtype=np.uint16)[:, None, None] * np.ones((64, 48), np.uint16)
    np.testing.assert_array_equal(data["frames"], expected)
    with h5py.File(file, "r") as f:
        assert f.attrs["run_id"] == "bits"
        assert f.attrs["mouse"] == "M12"
        assert f.attrs["session"] == 3
        assert "SimulatedCamera" in f.attrs["pipeline"]


def test_fan_out_to_two_readers_and_a_processor(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        name: fanout
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {{shape: [32, 32], n_frames: 400, pattern: counter}}
          - name: check
            class: {ACTORS}.Counter
          - name: rowsum
            class: {ACTORS}.RowSum
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {{directory: "@DATA@"}}
        links:
          - camera.frames -> check.frames
          - camera.frames -> rowsum.frames
          - camera.frames -> recorder.camera
          - rowsum.sums -> recorder.sums
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        assert pipeline.wait(60)
        check = rigd.get(pipeline.handle("check").report.remote())
    finally:
        report = pipeline.stop()
    assert check["ids"] == list(range(400))
    assert check["bad"] == []
    assert report.frames == {"camera": 400, "sums": 400}
    sums = read_stream(report.files[0], "sums")
    np.testing.assert_array_equal(sums["frames"][:, 0], (np.arange(400) % 65536) * 32)


def test_a_latest_viewer_never_slows_the_recorder(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        name: viewer
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {{shape: [64, 64], fps: 400, n_frames: 800, pattern: counter}}
          - name: viewer
            class: {ACTORS}.SlowViewer
            options: {{delay: 0.05}}
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {{directory: "@DATA@"}}
        links:
          - {{link: camera.frames -> viewer.frames, policy: latest, slots: 4}}
          - {{link: camera.frames -> recorder.camera, slots: 32}}
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        assert pipeline.wait(60)
        seen = rigd.get(pipeline.handle("viewer").frames_seen.remote())
        status = pipeline.status()
    finally:
        report = pipeline.stop()
    # n_frames counts the frames delivered: all 800 are recorded; if the
    # recorder fell a ring behind on a loaded machine, the camera's drops (in
    # the ledger, never the viewer's) come on top.
    assert report.frames["camera"] == 800
    camera_file = read_stream(report.files[0], "camera")
    assert (np.diff(camera_file["frame_id"].astype(np.int64)) > 0).all()
    assert set(camera_file["dropped"]["reason"]) <= {b"ring_full"}
    # The viewer saw a fraction, always the newest, in order.
    assert 5 <= len(seen) < 400
    assert seen == sorted(seen)
    (camera,) = [link for link in status.links if link.ring == "camera.frames"]
    viewer_drops = {r[0]: r[2] for r in camera.readers}["viewer.frames"]
    assert viewer_drops > 400
    # 800 frames at 400 fps: the camera was never held back by the viewer.
    assert report.duration_s < 2.0 + 5.0


def test_sigkill_of_a_processor_loses_nothing_in_the_recording(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        name: crash
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {{shape: [32, 32], fps: 500, n_frames: 1500, overflow: block}}
          - name: rowsum
            class: {ACTORS}.RowSum
            max_restarts: 1
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {{directory: "@DATA@"}}
        links:
          - {{link: camera.frames -> rowsum.frames, slots: 64}}
          - {{link: camera.frames -> recorder.camera, slots: 64}}
          - {{link: rowsum.sums -> recorder.sums, slots: 64}}
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        rowsum = pipeline.handle("rowsum")
        victim = rigd.get(rowsum.pid.remote())
        wait_until(lambda: rigd.get(rowsum.count.remote()) >= 200, timeout=30, what="200 sums")
        os.kill(victim, signal.SIGKILL)
        wait_until(
            lambda: (
                pipeline.status().actors["rowsum"]["restarts"] == 1
                and rigd.get(pipeline.handle("rowsum").count.remote()) > 0
            ),
            timeout=30,
            what="the processor back after its restart",
        )
        assert pipeline.wait(60)
    finally:
        report = pipeline.stop()
    assert report.state == "stopped"
    assert report.restarts["rowsum"] == 1
    camera = read_stream(report.files[0], "camera")
    np.testing.assert_array_equal(camera["frame_id"], np.arange(1500))
    assert len(camera["dropped"]) == 1  # only the event: no camera frame lost
    assert camera["dropped"][0]["count"] == 0
    assert b"rowsum restarted" in camera["dropped"][0]["reason"]
    sums = read_stream(report.files[0], "sums")
    # The processed stream accounts for every frame: recorded or in the ledger.
    assert len(sums["frame_id"]) + report.dropped["sums"] == 1500


def test_a_restarted_camera_goes_on_numbering_and_the_ledger_has_the_gap(tmp_path: Path) -> None:
    # A camera restarted by max_restarts numbered its frames from 0 again:
    # hundreds of duplicate frame ids in one file, and no gap in the ledger.
    path = write(
        tmp_path,
        """
        name: camera_crash
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [32, 32], fps: 400, n_frames: 1600, pattern: counter}
            max_restarts: 1
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {directory: "@DATA@", flush_interval: 0.1}
        links:
          - {link: camera.frames -> recorder.camera, slots: 64}
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        recorder = pipeline.handle("recorder")
        wait_until(
            lambda: rigd.get(recorder.summary.remote())["frames"].get("camera", 0) >= 300,
            timeout=30,
            what="300 frames recorded",
        )
        kill_and_await_restart(pipeline, "camera")
        assert pipeline.wait(60)
    finally:
        report = pipeline.stop()
    data = read_stream(report.files[0], "camera")
    ids = data["frame_id"].astype(np.int64)
    assert (np.diff(ids) > 0).all(), "frame ids repeated or out of order"
    assert all((data["frames"][i] == ids[i] % 65536).all() for i in range(len(ids)))
    # n_frames counts the frames delivered, on across the restart: 1600 in the file.
    assert len(ids) == 1600
    # The frames the camera missed while it was down are in the ledger.
    gaps = [(int(r["first_id"]), int(r["count"])) for r in data["dropped"] if r["count"]]
    assert gaps, data["dropped"]
    assert len(ids) + sum(count for _, count in gaps) == ids[-1] + 1


def test_a_run_whose_file_exists_is_refused_and_the_file_left_as_it_was(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: trials
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [8, 8], n_frames: 50, pattern: counter}
        record: [camera.frames]
        recording: {directory: "@DATA@", template: "{run_id}.h5"}
        """,
    )
    first = run(path, run_id="trial1")
    (file,) = first.files
    before = Path(file).read_bytes()

    pipeline = Pipeline(plan_pipeline(path), run_id="trial1")
    with pytest.raises(Exception, match=r"exists already: a run is never recorded into another"):
        pipeline.start()
    pipeline.stop()

    assert Path(file).read_bytes() == before
    ids = read_stream(file, "camera")["frame_id"]
    assert ids.tolist() == list(range(50))


def test_sigkill_of_the_recorder_restarts_it_with_a_ledger_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: recorder_crash
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [32, 32], fps: 400, n_frames: 1600, pattern: counter}
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {directory: "@DATA@", flush_interval: 0.1}
            max_restarts: 1
        links:
          - {link: camera.frames -> recorder.camera, slots: 64}
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        recorder = pipeline.handle("recorder")
        file = rigd.get(recorder.summary.remote())["path"]
        wait_until(
            lambda: rigd.get(recorder.summary.remote())["frames"].get("camera", 0) >= 300,
            timeout=30,
            what="300 frames recorded",
        )
        kill_and_await_restart(pipeline, "recorder")
        assert pipeline.wait(60)
    finally:
        report = pipeline.stop()
    assert report.files == (file,)
    data = read_stream(file, "camera")
    assert data["state"] == "complete"
    ids = data["frame_id"]
    assert (np.diff(ids.astype(np.int64)) > 0).all(), "frames out of order or repeated"
    assert all((data["frames"][i] == ids[i] % 65536).all() for i in range(len(ids)))
    reasons = [r["reason"].decode() for r in data["dropped"]]
    assert any("restart of recorder" in r for r in reasons), reasons
    # Every frame is recorded or accounted for in the ledger (n_frames counts
    # the 1600 delivered; a camera drop on a loaded machine comes on top).
    assert len(ids) + int(data["dropped"]["count"].sum()) == ids[-1] + 1 >= 1600
    assert 300 <= len(ids) < 1600


def test_public_methods_pause_and_resume_while_running(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        name: controls
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {{shape: [8, 8], fps: 200}}
          - name: check
            class: {ACTORS}.Counter
        links:
          - camera.frames -> check.frames
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        camera = pipeline.handle("camera")
        check = pipeline.handle("check")
        wait_until(lambda: rigd.get(camera.status.remote())["frames_written"] >= 20, timeout=30)
        rigd.get(camera.__rigd_pause__.remote())
        rigd.get(check.__rigd_pause__.remote())
        assert rigd.get(camera.__rigd_status__.remote())["state"] == "paused"
        paused_at = rigd.get(camera.status.remote())["frames_written"]
        rigd.get(check.__rigd_resume__.remote())
        rigd.get(camera.__rigd_resume__.remote())
        wait_until(
            lambda: rigd.get(camera.status.remote())["frames_written"] > paused_at + 10,
            timeout=30,
        )
        report = rigd.get(check.report.remote())
        assert report["paused"] == 1
        assert report["resumed"] == 1
        assert report["bad"] == []
    finally:
        pipeline.stop()
    # An unlimited source runs until stopped; stop drains and ends cleanly.
    assert pipeline.state == "stopped"


def test_the_first_status_of_a_run_gives_its_rate_so_far_not_zero(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        name: rate
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [8, 8], fps: 200}
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        camera = pipeline.handle("camera")
        wait_until(lambda: rigd.get(camera.status.remote())["frames_written"] >= 20, timeout=30)
        (link,) = pipeline.status().links  # the first sample of this run
        assert link.written >= 20
        # The mean since the run began: 200 fps, less its start-up on a loaded machine.
        assert 0 < link.rate_hz <= 260
    finally:
        pipeline.stop()


def test_a_step_that_always_fails_logs_a_little_then_gives_up(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        f"""
        name: flaky
        actors:
          - name: flaky
            class: {ACTORS}.Flaky
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        wait_until(lambda: pipeline.state == "failed" or pipeline.state == "stopped", timeout=60)
    finally:
        report = pipeline.stop()
    assert report.state == "failed"
    assert "flaky" in (report.failure or "")
    err = capfd.readouterr().err
    assert err.count("the device is unplugged") <= 6, "the failing step flooded the log"
    assert "failed 50 times in a row" in err


def test_file_playback_replays_a_run_through_frame_stats(tmp_path: Path) -> None:
    recorded = write(
        tmp_path,
        """
        name: source
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [16, 16], fps: 200, n_frames: 120, pattern: counter, overflow: block}
        record: [camera.frames]
        recording: {directory: "@DATA@"}
        """,
        "record.yaml",
    )
    first = run(recorded, run_id="original")
    (original,) = first.files
    replay = write(
        tmp_path,
        f"""
        name: replay
        actors:
          - name: player
            class: rigd.pipeline.FilePlayback
            options: {{path: "{original}", rate: recorded}}
          - name: stats
            class: rigd.pipeline.FrameStats
        links:
          - player.frames -> stats.frames
        record: [player.frames, stats.stats]
        recording: {{directory: "@DATA@"}}
        """,
        "replay.yaml",
    )
    second = run(replay, run_id="replayed")
    assert second.frames == {"player": 120, "stats_stats": 120}
    (copy,) = second.files
    with h5py.File(original, "r") as a, h5py.File(copy, "r") as b:
        np.testing.assert_array_equal(a["camera/frames"][:], b["player/frames"][:])
        np.testing.assert_array_equal(a["camera/frame_id"][:], b["player/frame_id"][:])
        # Played at the recorded rate: the same gaps between frames, within 20 ms.
        gaps_a = np.diff(a["camera/timestamp_ns"][:]) / 1e6
        gaps_b = np.diff(b["player/timestamp_ns"][:]) / 1e6
        np.testing.assert_allclose(gaps_b, gaps_a, atol=1e-3)
        stats = b["stats_stats/frames"][:]
        counts = np.arange(120, dtype=np.float64)
        np.testing.assert_array_equal(stats[:, 0], counts)  # mean
        np.testing.assert_array_equal(stats[:, 1], counts)  # min
        np.testing.assert_array_equal(stats[:, 2], counts)  # max


def test_a_ring_left_by_a_killed_supervisor_is_removed_at_the_next_load(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, sys
        from rigd.storage import FrameRing
        ring = FrameRing.create("orphan", (4, 4), "uint8")
        print(ring.name, flush=True)
        os.kill(os.getpid(), 9)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    name = out.stdout.strip()
    assert name
    assert os.path.exists(f"/dev/shm/{name}")
    path = write(
        tmp_path,
        """
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [4, 4], n_frames: 3}
        """,
    )
    run(path)
    assert not os.path.exists(f"/dev/shm/{name}")


def affinity(pid: int) -> set[frozenset[int]]:
    """The CPU sets of every thread of process ``pid``."""
    return {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir(f"/proc/{pid}/task")}


def test_actors_pinned_to_cpus_run_there_and_after_a_restart(tmp_path: Path) -> None:
    first, last = min(os.sched_getaffinity(0)), max(os.sched_getaffinity(0))
    path = write(
        tmp_path,
        f"""
        name: pinned
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {{shape: [8, 8], fps: 200}}
            cpus: [{last}]
          - name: check
            class: {ACTORS}.Counter
            cpus: [{first}]
            max_restarts: 1
        links:
          - camera.frames -> check.frames
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        check = pipeline.handle("check")
        wait_until(lambda: len(rigd.get(check.report.remote())["ids"]) >= 10, timeout=30)
        pids = {name: a["pid"] for name, a in pipeline.status().actors.items()}
        # Every thread, the step thread included (it runs: frames were counted).
        assert affinity(pids["camera"]) == {frozenset({last})}
        assert affinity(pids["check"]) == {frozenset({first})}

        os.kill(pids["check"], signal.SIGKILL)
        wait_until(
            lambda: pipeline.status().actors["check"]["restarts"] == 1,
            timeout=30,
            what="the check actor restarted",
        )
        wait_until(lambda: len(rigd.get(check.report.remote())["ids"]) >= 10, timeout=30)
        assert affinity(pipeline.status().actors["check"]["pid"]) == {frozenset({first})}
    finally:
        pipeline.stop()


def test_realtime_holds_cpu_wakeup_latency_while_running(tmp_path: Path) -> None:
    from rigd.pipeline._cpu_latency import DEVICE

    if not os.access(DEVICE, os.W_OK):
        pytest.skip(f"{DEVICE} is not writable here (needs root); the fallback is tested below")

    def current() -> int:
        with open(DEVICE, "rb") as f:
            return int.from_bytes(f.read(4), "little", signed=True)

    before = current()
    path = write(
        tmp_path,
        """
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [8, 8], fps: 100}
        realtime: {cpu_latency_us: 0}
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        assert current() == 0
    finally:
        pipeline.stop()
    assert current() == before


def test_a_cpu_latency_request_that_cannot_be_held_warns_and_runs_on(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    from rigd.pipeline._cpu_latency import CpuLatencyRequest

    request = CpuLatencyRequest(0, device=str(tmp_path / "no-such-device"))
    assert not request.held
    assert "cannot hold CPU wake-up latency at 0 us" in caplog.text
    assert "udev rule" in caplog.text
    request.release()
    with pytest.raises(ValueError, match="cpu_latency_us must be >= 0"):
        CpuLatencyRequest(-1)


def test_a_restarted_playback_goes_on_after_the_last_frame_it_sent(tmp_path: Path) -> None:
    recorded = write(
        tmp_path,
        """
        name: source
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [16, 16], n_frames: 600, pattern: counter}
        record: [camera.frames]
        recording: {directory: "@DATA@"}
        """,
        "record.yaml",
    )
    (original,) = run(recorded, run_id="original").files
    replay = write(
        tmp_path,
        f"""
        name: replay
        actors:
          - name: player
            class: rigd.pipeline.FilePlayback
            options: {{path: "{original}", rate: recorded}}
            max_restarts: 1
        record: [player.frames]
        recording: {{directory: "@DATA@"}}
        """,
        "replay.yaml",
    )
    pipeline = Pipeline(plan_pipeline(replay), run_id="replayed")
    pipeline.start()
    try:
        wait_until(lambda: pipeline.status().links[0].written >= 50, timeout=30, what="frames")
        kill_and_await_restart(pipeline, "player")
        assert pipeline.wait(60)
    finally:
        report = pipeline.stop()
    ids = read_stream(report.files[0], "player")["frame_id"].astype(np.int64)
    assert (np.diff(ids) > 0).all(), "frames replayed twice"
    assert ids[-1] == 599
