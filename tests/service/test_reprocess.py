"""``rigd reprocess``: run files replayed through a pipeline's processors, for real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.pipeline import replay_pipeline
from rigd.storage import RunWriter, StreamSpec
from tests.service.daemon import rigd_cli_in

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
        # The acquisition times are the source's, not the replay's (``rate: max``).
        with h5py.File(tmp_path / "first.h5", "r") as source:
            np.testing.assert_array_equal(
                f["camera/timestamp_ns"][:], source["camera/timestamp_ns"][:]
            )
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


def test_a_reprocessed_file_keeps_its_sources_metadata_and_drop_ledger(tmp_path: Path) -> None:
    # Was: the new file had only reprocessed_from, and its ledger said "gap"
    # (or nothing) where the source said why frames were lost.
    from rigd.service._reprocess import reprocess

    pipeline = tmp_path / "rowsums.yaml"
    pipeline.write_text(PIPELINE)
    source = tmp_path / "lossy.h5"
    frames = np.random.default_rng(5).integers(0, 4000, (12, 8, 12), dtype=np.uint16)
    ids = [0, 1, 2, 5, 6, 7, 8, 12, 13, 14, 15, 16]
    meta = {"subject_id": "M12", "species": "Mus musculus", "session": {"day": 3}, "gain": 2.5}
    spec = StreamSpec("camera", (8, 12), np.dtype(np.uint16))
    with RunWriter(source, [spec], run_id="lossy", metadata=meta) as writer:
        for frame, k in zip(frames, ids, strict=True):
            if k == 5:
                writer.note_dropped("camera", 3, 2, "missing_packets")
            if k == 8:
                writer.note_dropped("camera", 8, 0, "restart of camera")  # an event
            if k == 12:
                writer.note_dropped("camera", 9, 1, "ring_full")
                writer.note_dropped("camera", 10, 2, "restart of recorder recorder")
            writer.write("camera", frame, k, 1_700_000_000_000_000_000 + k * 10_000_000)
    with h5py.File(source, "r") as f:
        expected = [
            (int(r["first_id"]), int(r["count"]), r["reason"].decode())
            for r in f["camera/dropped"][:]
        ]
    assert [row[2] for row in expected] == [
        "missing_packets",
        "restart of camera",
        "ring_full",
        "restart of recorder recorder",
    ]

    (result,) = reprocess(pipeline, [str(source)], tmp_path / "out")

    assert result.state == "done", result.error
    with h5py.File(result.output or "", "r") as f:
        attrs = dict(f.attrs)
        camera = f["camera"]
        np.testing.assert_array_equal(camera["frames"][:], frames)
        ledger = [
            (int(r["first_id"]), int(r["count"]), r["reason"].decode())
            for r in camera["dropped"][:]
        ]
        dropped = int(camera.attrs["frames_dropped"])
    assert ledger == expected  # reasons kept, no "gap" in their place
    assert dropped == 5
    assert (attrs["subject_id"], attrs["species"], attrs["gain"]) == ("M12", "Mus musculus", 2.5)
    assert json.loads(attrs["session"]) == {"day": 3}
    assert attrs["reprocessed_from"] == str(source)
    assert attrs["reprocessed_pipeline"] == "rowsums"
    assert f"{source} through pipeline 'rowsums' ({pipeline})" in attrs["provenance"]


def test_an_actor_module_in_the_current_directory_imports_as_with_rigd_run(
    tmp_path: Path,
) -> None:
    # A lab's own processor beside its pipeline file, no PYTHONPATH: `rigd run`
    # imports it from the current directory, and so must `rigd reprocess`.
    (tmp_path / "myproc.py").write_text(
        "from tests.pipeline.actors import RowSum as _RowSum\n\n\n"
        "class RowSum(_RowSum):\n    pass\n"
    )
    pipeline = tmp_path / "mine.yaml"
    pipeline.write_text(PIPELINE.replace("tests.pipeline.actors.RowSum", "myproc.RowSum"))
    frames = run_file(tmp_path / "one.h5", 4, 20)
    # PYTHONPATH holds rigd's tests package, not the cwd.
    result = rigd_cli_in(
        tmp_path,
        "reprocess",
        str(pipeline),
        str(tmp_path / "one.h5"),
        "--out",
        str(tmp_path / "out"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    with h5py.File(tmp_path / "out" / "one-reprocessed.h5", "r") as f:
        expected = frames[:, 0, :].sum(axis=1, dtype=np.int64)[:, None]
        np.testing.assert_array_equal(f["sums/frames"][:], expected)


def test_a_wrong_pipeline_is_named_with_its_own_line_before_any_file_is_touched(
    tmp_path: Path,
) -> None:
    pipeline = tmp_path / "wrong.yaml"
    pipeline.write_text(PIPELINE.replace("tests.pipeline.actors.RowSum", "nosuchmodule.RowSum"))
    run_file(tmp_path / "one.h5", 5, 5)

    result = rigd_cli_in(
        tmp_path,
        "reprocess",
        str(pipeline),
        str(tmp_path / "one.h5"),
        "--out",
        str(tmp_path / "out"),
    )

    assert result.returncode == 2
    assert str(pipeline) in result.stderr
    assert "nosuchmodule.RowSum" in result.stderr
    assert "line 8, actors[1].class" in result.stderr
    assert not (tmp_path / "out").exists()
