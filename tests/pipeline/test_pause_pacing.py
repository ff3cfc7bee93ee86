"""Paced sources resume at their rate after a pause: no catch-up burst, no drops.

A camera (``SimulatedCamera``), a TIFF stack (``TiffStack``), a video file
(``VideoSource``, ``rate: native``) and a replayed run (``FilePlayback``) all
pace their frames on a clock; a pause must restart that clock, not make the
sources write the paused span's frames at once.
"""

from __future__ import annotations

import textwrap
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import h5py
import numpy as np
import tifffile

from rigd.pipeline import Pipeline, plan_pipeline
from rigd.storage import RunWriter, StreamSpec
from tests.helpers import wait_until

FPS = 100
#: Frames after the resume that must take their time: at FPS, 0.29 s at least.
AFTER = 30

PIPELINE = """\
name: pacing
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {{shape: [64, 64], dtype: uint16, fps: {fps}}}
  - name: stack
    class: rigd.pipeline.TiffStack
    options: {{path: "{tiff}", fps: {fps}}}
  - name: video
    class: rigd.pipeline.VideoSource
    options: {{path: "{video}", rate: native}}
  - name: player
    class: rigd.pipeline.FilePlayback
    options: {{path: "{run}", rate: recorded}}
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {{directory: "{data}"}}
links:
  - {{link: camera.frames -> recorder.camera, slots: 16}}
  - {{link: stack.frames -> recorder.stack, slots: 16}}
  - {{link: video.frames -> recorder.video, slots: 16}}
  - {{link: player.frames -> recorder.player, slots: 16}}
"""


def write_video(path: Path, n: int) -> None:
    """``n`` gray 16 x 16 frames at ``FPS``, FFV1 (lossless)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "gray"
        stream.time_base = Fraction(1, FPS)
        for k in range(n):
            frame = av.VideoFrame.from_ndarray(np.zeros((16, 16), np.uint8), format="gray")
            frame.pts = k
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def written(pipeline: Pipeline) -> dict[str, int]:
    return {link.ring.split(".")[0]: link.written for link in pipeline.status().links}


def test_paced_sources_resume_at_their_rate_without_a_burst_or_drops(tmp_path: Path) -> None:
    tiff = tmp_path / "stack.tif"
    tifffile.imwrite(tiff, np.zeros((600, 8, 8), np.uint16))
    run = tmp_path / "source.h5"
    spec = StreamSpec("camera", (8, 8), np.dtype(np.uint16))
    with RunWriter(run, [spec], run_id="source") as writer:
        for k in range(600):
            writer.write(
                "camera", np.full((8, 8), k, np.uint16), 7 + k, 1_700_000_000 * 10**9 + k * 10**7
            )
    video = tmp_path / "video.mkv"
    write_video(video, 600)
    text = PIPELINE.format(fps=FPS, tiff=tiff, video=video, run=run, data=tmp_path / "data")
    path = tmp_path / "pacing.yaml"
    path.write_text(textwrap.dedent(text))
    # The pause ends by its limit: a real pause span, waited for on its event.
    pipeline = Pipeline(plan_pipeline(path), run_id="pacing", max_pause_s=0.8)
    resumed = threading.Event()
    resumed_at: list[float] = []
    pipeline.on_resumed(lambda: (resumed_at.append(time.monotonic()), resumed.set()))
    pipeline.start()
    try:
        wait_until(lambda: min(written(pipeline).values()) >= 10, timeout=30, what="frames")
        pipeline.pause()
        held = written(pipeline)
        assert resumed.wait(30), "the pause limit did not resume the run"
        took: dict[str, float] = {}

        def all_took_their_frames() -> bool:
            now = written(pipeline)
            for source in held:
                if source not in took and now[source] >= held[source] + AFTER:
                    took[source] = time.monotonic() - resumed_at[0]
            return len(took) == len(held)

        wait_until(all_took_their_frames, timeout=30, what="frames after the resume")
    finally:
        report = pipeline.stop()

    # Catching up, each wrote the paused span's 80 frames in a burst of milliseconds.
    bursts = {s: round(t, 3) for s, t in took.items() if t < 0.8 * (AFTER - 1) / FPS}
    assert not bursts, f"{AFTER} frames in so few seconds after the resume: {bursts}"
    (out,) = report.files
    with h5py.File(out, "r") as f:
        for stream in ("camera", "stack", "video", "player"):
            reasons = [row["reason"].decode() for row in f[f"{stream}/dropped"][:]]
            assert "ring_full" not in reasons, (stream, reasons)
        # The camera's frames after the resume are 1/fps apart, not a burst.
        stamps = f["camera/timestamp_ns"][:].astype(np.int64)
        gaps = np.diff(stamps) / 1e9
        resume = int(np.argmax(gaps)) + 1  # the paused span: the longest gap
        after = stamps[resume : resume + AFTER]
        assert (after[-1] - after[0]) / 1e9 >= 0.8 * (AFTER - 1) / FPS
        # The replay keeps the source's ids and acquisition times.
        ids = f["player/frame_id"][:].astype(np.int64)
        np.testing.assert_array_equal(
            f["player/timestamp_ns"][:].astype(np.int64), 1_700_000_000 * 10**9 + (ids - 7) * 10**7
        )


def test_a_paced_camera_starts_its_clock_with_the_run_not_before_a_slow_setup(
    tmp_path: Path,
) -> None:
    # Was: the clock started in the camera's own setup; a processor whose setup took
    # 1 s made the camera write 100 frames at once when the run began, into a ring of
    # 16 slots: dropped as ring_full.
    path = tmp_path / "slow_setup.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            name: slow_setup
            actors:
              - name: camera
                class: rigd.pipeline.SimulatedCamera
                options: {{shape: [16, 16], dtype: uint16, fps: {FPS}, n_frames: 30}}
              - name: slow
                class: tests.pipeline.actors.SlowSetup
                options: {{setup_s: 1.0}}
            links:
              - {{link: camera.frames -> slow.frames, slots: 16}}
            record: [camera.frames, slow.sums]
            recording: {{directory: "{tmp_path / "data"}"}}
            """
        )
    )
    pipeline = Pipeline(plan_pipeline(path), run_id="slow_setup")
    pipeline.start()
    try:
        assert pipeline.wait(60)
    finally:
        report = pipeline.stop()

    assert report.state == "stopped", report.failure
    with h5py.File(report.files[0], "r") as f:
        assert f["camera"].attrs["frames_dropped"] == 0
        stamps = f["camera/timestamp_ns"][:]
    assert len(stamps) == 30
    # 29 gaps of 1/FPS: the frames took their time (a burst takes a few ms).
    assert (stamps[-1] - stamps[0]) / 1e9 >= 0.8 * 29 / FPS
