"""``rigd reprocess``: run files replayed through a pipeline's processors, for real."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.service._reprocess import replay_pipeline
from rigd.storage import RunWriter, StreamSpec

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = """
name: rowsums
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [8, 12], fps: 100, overflow: block}
  - name: rowsum
    class: tests.pipeline.actors.RowSum
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {directory: rigd-data}
links:
  - {link: camera.frames -> rowsum.frames}
  - {link: camera.frames -> recorder.camera}
  - {link: rowsum.sums -> recorder.sums}
"""


def run_file(path: Path, seed: int, count: int) -> np.ndarray:
    frames = np.random.default_rng(seed).integers(0, 4000, (count, 8, 12), dtype=np.uint16)
    spec = StreamSpec("camera", (8, 12), np.dtype(np.uint16))
    with RunWriter(path, [spec], run_id=path.stem) as writer:
        for k, frame in enumerate(frames):
            writer.write("camera", frame, 100 + k, 1_700_000_000_000_000_000 + k * 10_000_000)
    return frames


def test_each_file_is_replayed_into_a_new_run_file_and_a_bad_one_does_not_stop_the_rest(
    tmp_path: Path,
) -> None:
    pipeline = tmp_path / "rowsums.yaml"
    pipeline.write_text(PIPELINE)
    first = run_file(tmp_path / "first.h5", 1, 150)
    broken = tmp_path / "broken.h5"
    broken.write_bytes(b"not an HDF5 file")
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rigd",
            "reprocess",
            str(pipeline),
            str(broken),
            str(tmp_path / "first.h5"),
            "--out",
            str(out),
            "--actor-processes",  # as a live run (the default, in-process, is tested below)
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    # The bad file first: the next one is replayed all the same.
    assert [line.split(":")[0] for line in lines[:2]] == [
        "[1/2] " + str(broken),
        "[2/2] " + str(tmp_path / "first.h5"),
    ]
    assert "1 done, 1 failed" in result.stdout
    (row,) = [line for line in lines if line.startswith("broken.h5")]
    assert "failed" in row
    assert "Error" in row
    with h5py.File(out / "first-reprocessed.h5", "r") as f:
        np.testing.assert_array_equal(f["camera/frames"][:], first)
        np.testing.assert_array_equal(f["camera/frame_id"][:], 100 + np.arange(len(first)))
        np.testing.assert_array_equal(f["sums/frame_id"][:], 100 + np.arange(len(first)))
        expected = first[:, 0, :].sum(axis=1, dtype=np.int64)[:, None]
        np.testing.assert_array_equal(f["sums/frames"][:], expected)
        assert f.attrs["run_state"] == "complete"
        assert "first.h5" in str(f.attrs["reprocessed_from"])


def test_inputs_of_one_name_get_outputs_of_their_own_and_no_output_is_overwritten(
    tmp_path: Path,
) -> None:
    from rigd.service._reprocess import reprocess

    pipeline = tmp_path / "rowsums.yaml"
    pipeline.write_text(PIPELINE)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = run_file(tmp_path / "a" / "run.h5", 1, 40)
    second = run_file(tmp_path / "b" / "run.h5", 2, 30)
    out = tmp_path / "out"
    out.mkdir()
    (out / "kept-reprocessed.h5").write_bytes(b"a file of the user's")
    (tmp_path / "kept.h5").write_bytes(b"")

    results = reprocess(
        pipeline,
        [str(tmp_path / "a" / "run.h5"), str(tmp_path / "b" / "run.h5"), str(tmp_path / "kept.h5")],
        out,
    )

    assert [r.state for r in results] == ["done", "done", "failed"]
    assert [Path(r.output or "").name for r in results[:2]] == [
        "run-reprocessed.h5",
        "run-reprocessed-2.h5",
    ]
    for name, frames in (("run-reprocessed.h5", first), ("run-reprocessed-2.h5", second)):
        with h5py.File(out / name, "r") as f:
            np.testing.assert_array_equal(f["camera/frames"][:], frames)
    assert "never overwritten" in (results[2].error or "")
    assert (out / "kept-reprocessed.h5").read_bytes() == b"a file of the user's"


def test_a_source_that_is_not_recorded_is_refused_with_the_fix() -> None:
    text = textwrap.dedent(
        """
        actors:
          - {name: camera, class: rigd.pipeline.SimulatedCamera}
          - {name: recorder, class: rigd.pipeline.HDF5Recorder}
          - {name: stats, class: rigd.pipeline.FrameStats}
        links:
          - {link: camera.frames -> stats.frames}
          - {link: stats.stats -> recorder.stats}
        """
    )
    with pytest.raises(
        ValueError, match=r"source 'camera' is not recorded.*link it to the recorder"
    ):
        replay_pipeline(text, "run.h5", "out")
