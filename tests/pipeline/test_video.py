"""VideoSource: a video written in the test with a lossless codec, replayed bit for bit."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from rigd._exceptions import RigdError
from rigd.config import PipelineFileError
from rigd.pipeline import Pipeline, plan_pipeline
from tests.pipeline.sources import frames_equal, read_stream, run, write

PIPELINE = """
name: video
actors:
  - name: video
    class: rigd.pipeline.VideoSource
    options: {path: "@PATH@", @OPTIONS@}
record: [video.frames]
recording: {directory: "@DATA@"}
"""


def write_video(
    path: Path, frames: np.ndarray, pix_fmt: str, source_format: str, fps: int = 50
) -> None:
    """Encode ``frames`` with FFV1, FFmpeg's lossless codec."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = pix_fmt
        stream.time_base = Fraction(1, fps)
        for k, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format=source_format)
            frame.pts = k
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_a_lossless_gray_video_is_replayed_bit_for_bit(tmp_path: Path) -> None:
    data = np.random.default_rng(3).integers(0, 256, (30, 48, 64), dtype=np.uint8)
    write_video(tmp_path / "gray.mkv", data, "gray", "gray")
    path = write(tmp_path, PIPELINE, path=tmp_path / "gray.mkv", options="rate: max")

    report = run(path)

    recorded = read_stream(report.files[0], "video")
    assert frames_equal(recorded["frames"], data)
    assert list(recorded["frame_id"]) == list(range(30))
    assert recorded["attrs"]["video.codec"] == "ffv1"


def test_a_lossless_rgb_video_is_replayed_bit_for_bit_as_rgb(tmp_path: Path) -> None:
    data = np.random.default_rng(4).integers(0, 256, (12, 32, 40, 3), dtype=np.uint8)
    write_video(tmp_path / "rgb.mkv", data, "bgr0", "rgb24")
    path = write(
        tmp_path, PIPELINE, path=tmp_path / "rgb.mkv", options="rate: max, pixel_format: rgb"
    )

    report = run(path)

    assert frames_equal(read_stream(report.files[0], "video")["frames"], data)


@pytest.mark.slow
def test_a_video_at_its_native_rate_takes_its_duration(tmp_path: Path) -> None:
    # 20 frames at 50 fps: 0.38 s from the first frame to the last. The
    # recorded host times must span at least that (the source waits for each
    # frame's time; it may be late on a loaded machine, never early).
    data = np.zeros((20, 16, 16), np.uint8)
    write_video(tmp_path / "slow.mkv", data, "gray", "gray", fps=50)
    path = write(tmp_path, PIPELINE, path=tmp_path / "slow.mkv", options="rate: native")

    report = run(path)

    times = read_stream(report.files[0], "video")["timestamp_ns"]
    assert (times[-1] - times[0]) / 1e9 >= 0.38 - 0.002


def test_a_missing_video_file_is_refused_at_planning(tmp_path: Path) -> None:
    path = write(tmp_path, PIPELINE, path=tmp_path / "none.mp4", options="rate: max")

    with pytest.raises(PipelineFileError) as info:
        plan_pipeline(path)

    assert (
        f"line 6, actors[0].options: video: video file '{tmp_path / 'none.mp4'}' does not "
        "exist; give a video file's path or a webcam's device (/dev/video0)" in str(info.value)
    )


def test_a_webcam_that_is_not_there_fails_the_load_naming_the_device(tmp_path: Path) -> None:
    # A webcam is a device: planning does not open it; its actor does, and
    # the run fails to load with the reason.
    path = write(tmp_path, PIPELINE, path="/dev/video97", options="rate: native")
    plan = plan_pipeline(path)
    assert plan.deferred == ("video", "recorder")

    with pytest.raises(RigdError, match=r"actor 'video' could not open its device: .*/dev/video97"):
        Pipeline(plan).start()
