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
from tests.pipeline.sources import (
    assert_each_frame_once,
    frames_equal,
    ledger,
    read_stream,
    run,
    run_with_a_restart,
    write,
)

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


def write_mp4(path: Path, n: int = 30) -> bytes:
    """An MPEG-4 mp4 of ``n`` 64 x 48 frames, its header (moov) first, as a
    camera's recorder leaves it (faststart); returns the file's bytes."""
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for k in range(n):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * k, np.uint8), "rgb24")
            frame.pts = k
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat"), "the header must come first"
    return data


def test_a_video_cut_short_warns_and_the_ledger_says_the_source_ended_early(
    tmp_path: Path,
) -> None:
    # Was: a silent short run (5 frames of 30, nothing said, no ledger row).
    data = write_mp4(tmp_path / "whole.mp4")
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    path = write(tmp_path, PIPELINE, path=tmp_path / "cut.mp4", options="rate: max")

    report = run(path)

    stream = read_stream(report.files[0], "video")
    reached = len(stream["frame_id"])
    assert 0 < reached < 30
    assert list(stream["frame_id"]) == list(range(reached))
    assert ledger(stream) == [(reached, 30 - reached, "source_ended_early")]
    assert report.dropped["video"] == 30 - reached
    assert report.log is not None
    assert (
        f"video file '{tmp_path / 'cut.mp4'}' ended after {reached} of the 30 frames its "
        "header promises" in Path(report.log).read_text()
    )


def test_a_video_none_of_whose_frames_decodes_is_refused_naming_the_file_and_pyav(
    tmp_path: Path,
) -> None:
    # Was: a frame shape of (0, 0) refused, or a silent 0-frame run.
    data = write_mp4(tmp_path / "whole.mp4")
    body = data.find(b"mdat") + 4
    (tmp_path / "zeroed.mp4").write_bytes(data[:body] + bytes(len(data) - body))
    (tmp_path / "header.mp4").write_bytes(data[:body])
    cases = {
        "zeroed.mp4": r"has no decodable frames: PyAV reported: .*Invalid data",
        "header.mp4": r"has no decodable frames: its stream ends before the first "
        r"\(its header promises 30\)",
    }
    for name, reported in cases.items():
        path = write(tmp_path, PIPELINE, path=tmp_path / name, options="rate: max")
        with pytest.raises(PipelineFileError, match=rf"line 6, .*'{tmp_path / name}' {reported}"):
            plan_pipeline(path)
    assert not (tmp_path / "data").exists()  # nothing recorded, no run file


def test_a_lossless_gray_video_is_replayed_bit_for_bit(tmp_path: Path) -> None:
    data = np.random.default_rng(3).integers(0, 256, (30, 48, 64), dtype=np.uint8)
    write_video(tmp_path / "gray.mkv", data, "gray", "gray")
    path = write(tmp_path, PIPELINE, path=tmp_path / "gray.mkv", options="rate: max")

    report = run(path)

    recorded = read_stream(report.files[0], "video")
    assert frames_equal(recorded["frames"], data)
    assert list(recorded["frame_id"]) == list(range(30))
    assert recorded["attrs"]["video.codec"] == "ffv1"


def test_a_restarted_video_goes_on_after_the_last_frame_it_sent(tmp_path: Path) -> None:
    # Before, a restarted source played its file from the start again, with
    # ids from 0, which the run file refuses (ids must increase).
    data = np.random.default_rng(4).integers(0, 256, (400, 16, 16), dtype=np.uint8)
    write_video(tmp_path / "gray.mkv", data, "gray", "gray", fps=200)
    text = PIPELINE.replace("@OPTIONS@}", "@OPTIONS@}\n    max_restarts: 1")
    path = write(tmp_path, text, path=tmp_path / "gray.mkv", options="")
    report = run_with_a_restart(path, "video", after=100)
    assert_each_frame_once(read_stream(report.files[0], "video"), data)


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
