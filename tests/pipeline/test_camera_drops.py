"""A camera is never held back: frames its ring has no room for are dropped,
counted and in the run file's ledger as ``ring_full``; a generator waits."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.pipeline import Pipeline, PipelineStatus, RunReport, plan_pipeline
from rigd.pipeline._camera import SimulatedCamera
from rigd.storage import FrameRing

ACTORS = "tests.pipeline.actors"

# A lossless viewer (50 frames/s unless told) behind a 400 fps camera, 4 slots between them.
SLOW_READER = f"""
name: held
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {{shape: [16, 16], fps: 400, n_frames: @N@, pattern: counter@OPT@}}
  - name: viewer
    class: {ACTORS}.SlowViewer
    options: {{delay: @DELAY@}}
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {{directory: "@DATA@", flush_interval: 0.1}}
links:
  - {{link: camera.frames -> viewer.frames, slots: 4}}
  - {{link: camera.frames -> recorder.camera, slots: 64}}
"""


@pytest.fixture(autouse=True)
def _no_rings_left() -> Iterator[None]:
    yield
    mine = f"rigd-{os.getpid()}-ring-"
    assert [n for n in os.listdir("/dev/shm") if n.startswith(mine)] == []


def run(
    tmp_path: Path, n: int, options: str = "", delay: float = 0.02
) -> tuple[RunReport, PipelineStatus]:
    text = SLOW_READER.replace("@N@", str(n)).replace("@OPT@", options)
    text = text.replace("@DELAY@", str(delay))
    path = tmp_path / "held.yaml"
    path.write_text(text.replace("@DATA@", str(tmp_path / "data")))
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        assert pipeline.wait(60), "the pipeline did not finish in time"
        status = pipeline.status()
    finally:
        report = pipeline.stop()
    return report, status


def read_camera(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        group = f["camera"]
        return group["frame_id"][:].astype(np.int64), group["frames"][:], group["dropped"][:]


def test_a_camera_behind_a_slow_lossless_reader_drops_and_the_ledger_says_ring_full(
    tmp_path: Path,
) -> None:
    # Was: the camera waited for the slowest lossless reader (the demo ran
    # at 120 of 200 fps saying "0 dropped").
    # A viewer at 100 frames/s behind a 400 fps camera.
    n = 120
    report, status = run(tmp_path, n, delay=0.01)
    ids, frames, ledger = read_camera(report.files[0])
    assert (np.diff(ids) > 0).all(), "frame ids repeated or out of order"
    assert all((frames[i] == ids[i] % 65536).all() for i in range(len(ids)))
    full = ledger[ledger["reason"] == b"ring_full"]
    assert len(full) > 0, ledger
    # n_frames counts the frames delivered (in the file); the drops come on top.
    assert len(ids) == n
    # Every frame the camera took is recorded or in the ledger, once.
    assert len(ids) + int(ledger["count"].sum()) == int(ids[-1]) + 1
    assert int(full["count"].sum()) == report.dropped["camera"]
    missing = set(range(int(ids[-1]) + 1)) - set(ids.tolist())
    noted = {int(r["first_id"]) + k for r in full for k in range(int(r["count"]))}
    assert noted == missing
    # The link's status counts them as the source's drops.
    (link,) = [link for link in status.links if link.ring == "camera.frames"]
    assert link.skipped == int(full["count"].sum())
    assert link.written == n


def test_overflow_block_makes_a_generator_that_loses_nothing(tmp_path: Path) -> None:
    report, status = run(tmp_path, 40, ", overflow: block")
    ids, _, ledger = read_camera(report.files[0])
    np.testing.assert_array_equal(ids, np.arange(40))
    assert len(ledger) == 0
    (link,) = [link for link in status.links if link.ring == "camera.frames"]
    assert link.skipped == 0


def test_a_camera_without_a_rate_is_a_generator_and_an_unknown_overflow_is_refused() -> None:
    assert SimulatedCamera(shape=[4, 4]).overflow == "block"
    assert SimulatedCamera(shape=[4, 4], fps=100).overflow == "drop"
    for bad in ("wait", "", 1, "DROP"):
        with pytest.raises(ValueError, match=r"overflow must be 'drop'.*or 'block'"):
            SimulatedCamera(shape=[4, 4], fps=100, overflow=bad)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="overflow must be"):
            SimulatedCamera.describe_outputs({"shape": [4, 4], "overflow": bad}, {})


def test_a_ring_counts_a_writers_skips_and_notes_each_run_of_them_as_ring_full() -> None:
    with FrameRing.create(f"skips-{os.getpid()}", (4,), "uint8", slot_count=2) as ring:
        writer = ring.writer()
        reader = ring.reader()
        writer.put(np.zeros(4, np.uint8), frame_id=0)
        writer.put(np.ones(4, np.uint8), frame_id=1)
        # Full: the lossless reader has both slots to read; a camera does not wait.
        with pytest.raises(TimeoutError), writer.slot(frame_id=2, timeout=0):
            pytest.fail("a full ring handed out a slot")
        writer.skip(2)
        writer.skip(3, 2)  # consecutive: one note for ids 2..4
        for bad in ((-1, 1), (7, 0)):
            with pytest.raises(ValueError, match="skip needs frame_id >= 0 and count >= 1"):
                writer.skip(*bad)
        assert ring.statistics().frames_skipped == 3
        taken = []
        for _ in range(2):
            with reader.read(timeout=1) as frame:
                taken.append(frame.frame_id)
        assert reader.drop_notes() == []  # not noted until a later frame is committed
        writer.put(np.full(4, 5, np.uint8), frame_id=5)
        writer.put(np.full(4, 6, np.uint8), frame_id=6)
        with reader.read(timeout=1) as frame:
            taken.append(frame.frame_id)
            notes = reader.drop_notes()  # a reader holding frame 5 has the note on 2..4
        with reader.read(timeout=1) as frame:
            taken.append(frame.frame_id)
        assert taken == [0, 1, 5, 6]
        assert [(n.first_id, n.count, n.reason) for n in notes] == [(2, 3, "ring_full")]
        # Drops after the last frame: noted when the stream closes.
        writer.skip(7, 2)
        assert reader.drop_notes() == []
        writer.close()
        assert [(n.first_id, n.count, n.reason) for n in reader.drop_notes()] == [
            (7, 2, "ring_full")
        ]
        assert ring.statistics().frames_skipped == 5
