"""A recorder that falls behind drops the oldest frames into the ledger
(``disk_behind``) instead of holding the camera back: real rings, real run
files, a real pipeline."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.pipeline import HDF5Recorder, Pipeline, plan_pipeline
from rigd.pipeline._recorder_behind import FallBehind
from rigd.storage import FrameRing, RingReader, RunWriter, StreamSpec

SHAPE = (64, 64)


def frame(k: int) -> np.ndarray:
    return np.full(SHAPE, k, np.uint16)


def record_from(reader: RingReader, writer: RunWriter, behind: FallBehind, count: int) -> None:
    """What HDF5Recorder does with each frame of a lossless input."""
    for _ in range(count):
        got = reader.get(timeout=5)
        if not behind.drop("cam", got.frame_id, reader.committed - got.seq, reader.slot_count):
            writer.write("cam", got.array, got.frame_id, got.timestamp_ns)
        reader.release(got)


def test_a_recorder_a_whole_ring_behind_drops_the_oldest_in_one_ledger_entry(
    tmp_path: Path,
) -> None:
    path = tmp_path / "run.h5"
    with FrameRing.create(f"behind-{os.getpid()}", SHAPE, np.uint16, slot_count=8) as ring:
        reader = ring.reader("lossless")
        put = ring.writer()
        writer = RunWriter(path, [StreamSpec("cam", SHAPE, np.uint16)], run_id="b", write_buffers=0)
        behind = FallBehind(writer.note_dropped)
        # The disk stalled: the camera filled the whole ring meanwhile.
        for k in range(8):
            put.put(frame(k), frame_id=k)
        # 8 behind (>= 3/4 of 8): frames 0-5 go, until 2 are left (1/4).
        record_from(reader, writer, behind, 8)
        # Caught up: the next frames are all written.
        for k in range(8, 20):
            put.put(frame(k), frame_id=k, timeout=1)
            record_from(reader, writer, behind, 1)
        # Behind again, by 6 of 8: the next run of drops is its own entry.
        for k in range(20, 26):
            put.put(frame(k), frame_id=k, timeout=1)
        record_from(reader, writer, behind, 6)
        behind.end()
        writer.close()
        put.close()
        reader.close()
    with h5py.File(path, "r") as f:
        ids = list(f["cam/frame_id"][:])
        ledger = f["cam/dropped"][:]
        assert ids == [6, 7, *range(8, 20), 24, 25]
        for row, k in enumerate(ids):
            assert f["cam/frames"][row][0, 0] == k
    assert [(int(r["first_id"]), int(r["count"]), r["reason"]) for r in ledger] == [
        (0, 6, b"disk_behind"),
        (20, 4, b"disk_behind"),
    ]
    assert writer.statistics().frames_dropped == {"cam": 10}
    assert behind.dropped == {"cam": 10}


def test_shares_of_the_ring_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError, match="0 < low < high < 1"):
        FallBehind(lambda *a: None, high=0.2, low=0.5)
    with pytest.raises(ValueError, match=r"when_behind is 'wait'.*'drop'.*'sometimes'"):
        HDF5Recorder(when_behind="sometimes")
    for buffers in (-1, True, 2.5, "4"):
        with pytest.raises(ValueError, match="write_buffers is a number of chunks >= 0"):
            HDF5Recorder(write_buffers=buffers)  # type: ignore[arg-type]


def test_a_camera_flat_out_into_a_dropping_recorder_accounts_for_every_frame(
    tmp_path: Path,
) -> None:
    """Frames written and frames in the ledger are every frame sent, once each."""
    text = f"""
    name: behind
    actors:
      - name: camera
        class: rigd.pipeline.SimulatedCamera
        options: {{shape: [256, 256], n_frames: 1500, pattern: counter}}
      - name: recorder
        class: rigd.pipeline.HDF5Recorder
        options: {{directory: "{tmp_path / "data"}", when_behind: drop}}
    links:
      - {{link: camera.frames -> recorder.camera, slots: 8}}
    """
    (tmp_path / "p.yaml").write_text(textwrap.dedent(text))
    pipeline = Pipeline(plan_pipeline(tmp_path / "p.yaml"), run_id="behind")
    started = time.monotonic()
    pipeline.start()
    try:
        assert pipeline.wait(60), "the pipeline did not finish"
    finally:
        report = pipeline.stop()
    assert time.monotonic() - started < 60
    # Flat out, the camera outruns the recorder: drops there must be.
    assert report.dropped["camera"] > 0
    assert report.frames["camera"] + report.dropped["camera"] == 1500
    with h5py.File(report.files[0], "r") as f:
        ids = [int(k) for k in f["camera/frame_id"][:]]
        ledger = f["camera/dropped"][:]
        for row in range(0, len(ids), 97):
            assert f["camera/frames"][row][0, 0] == ids[row] % 65536
    lost = [k for r in ledger for k in range(int(r["first_id"]), int(r["first_id"] + r["count"]))]
    assert {r["reason"] for r in ledger} <= {b"disk_behind"}
    assert sorted(ids + lost) == list(range(1500))
