"""TiffStack: stacks written with tifffile, replayed through a pipeline bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from rigd.config import PipelineFileError
from rigd.pipeline import plan_pipeline
from tests.pipeline.sources import (
    assert_each_frame_once,
    frames_equal,
    read_stream,
    run,
    run_with_a_restart,
    write,
)

PIPELINE = """
name: tiff
actors:
  - name: stack
    class: rigd.pipeline.TiffStack
    options: {path: "@PATH@", @OPTIONS@}
record: [stack.frames]
recording: {directory: "@DATA@"}
"""


def stack(n: int = 40, shape: tuple[int, ...] = (24, 32), seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 65535, (n, *shape), dtype=np.uint16)


def test_a_multipage_stack_is_replayed_bit_for_bit_from_a_memory_map(tmp_path: Path) -> None:
    data = stack()
    tifffile.imwrite(tmp_path / "s.tif", data)
    path = write(tmp_path, PIPELINE, path=tmp_path / "s.tif", options="fps: null")

    report = run(path)

    recorded = read_stream(report.files[0], "stack")
    assert frames_equal(recorded["frames"], data)
    assert list(recorded["frame_id"]) == list(range(40))
    assert report.dropped == {"stack": 0}


def test_a_compressed_stack_is_decoded_page_by_page_bit_for_bit(tmp_path: Path) -> None:
    data = stack(n=12)
    tifffile.imwrite(tmp_path / "z.tif", data, compression="zlib")
    path = write(tmp_path, PIPELINE, path=tmp_path / "z.tif", options="loop: false")

    report = run(path)

    assert frames_equal(read_stream(report.files[0], "stack")["frames"], data)


def test_a_scanimage_two_channel_file_is_deinterleaved_into_time_points(tmp_path: Path) -> None:
    # ScanImage interleaves channels page by page and says how many it saved
    # in its (legacy, 3.x) header: state.acq.numberOfChannelsSave.
    data = stack(n=20)  # 10 time points x 2 channels
    description = "state.configPath='C:\\\\rig'\nstate.acq.numberOfChannelsSave=2\n"
    tifffile.imwrite(tmp_path / "si.tif", data, description=description, metadata=None)
    path = write(tmp_path, PIPELINE, path=tmp_path / "si.tif", options="fps: 1000")

    report = run(path)

    frames = read_stream(report.files[0], "stack")["frames"]
    assert frames.shape == (10, 2, 24, 32)
    assert frames_equal(frames, data.reshape(10, 2, 24, 32))


def test_one_channel_of_a_multichannel_ome_tiff_is_replayed(tmp_path: Path) -> None:
    data = stack(n=16).reshape(8, 2, 24, 32)
    tifffile.imwrite(tmp_path / "m.ome.tif", data, metadata={"axes": "TCYX"})
    path = write(tmp_path, PIPELINE, path=tmp_path / "m.ome.tif", options="channel: 1")

    report = run(path)

    assert frames_equal(read_stream(report.files[0], "stack")["frames"], data[:, 1])


def test_a_missing_tiff_file_is_refused_at_planning_with_file_line_and_key(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, PIPELINE, path=tmp_path / "nope.tif", options="fps: 10")

    with pytest.raises(PipelineFileError) as info:
        plan_pipeline(path)

    assert (
        f"line 6, actors[0].options: stack: TIFF stack '{tmp_path / 'nope.tif'}' does not "
        "exist; give the path of a .tif file" in str(info.value)
    )


def test_a_channel_the_file_does_not_have_is_refused_at_planning(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "s.tif", stack(n=5))
    path = write(tmp_path, PIPELINE, path=tmp_path / "s.tif", options="channel: 2")

    with pytest.raises(PipelineFileError, match=r"channel must be one of 0 to 0 \(the file has 1"):
        plan_pipeline(path)


def test_a_restarted_stack_goes_on_after_the_last_frame_it_sent(tmp_path: Path) -> None:
    # A source restarted after a crash replayed its file from the start:
    # every frame again, with the same ids.
    data = stack(n=400, shape=(16, 16))
    tifffile.imwrite(tmp_path / "s.tif", data)
    text = PIPELINE.replace("@OPTIONS@}", "@OPTIONS@}\n    max_restarts: 1")
    path = write(tmp_path, text, path=tmp_path / "s.tif", options="fps: 200")
    report = run_with_a_restart(path, "stack", after=100)
    assert_each_frame_once(read_stream(report.files[0], "stack"), data)
