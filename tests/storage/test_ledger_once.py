"""Every frame id is in the run file or in its drop ledger, once: two accounts
of one id (a source's drop note and the recorder's own) count it once, and a
frame id that does not increase is refused with the recording kept."""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.pipeline._recorder_behind import FallBehind
from rigd.storage import DropReason, RunWriter, StreamSpec, inspect_run

SPEC = StreamSpec("cam", (4, 4), np.uint16)


def put(writer: RunWriter, k: int) -> None:
    writer.write("cam", np.full(SPEC.shape, k, np.uint16), k, time.time_ns())


def test_a_ring_full_note_inside_a_disk_behind_run_is_counted_once(tmp_path: Path) -> None:
    """The recorder's order: the ring's note for id 8 arrives while the
    ``disk_behind`` run 2..7 is still open; the run is noted when frame 9 is
    written. Id 8 is ``ring_full`` only, not a ``gap`` too."""
    path = tmp_path / "run.h5"
    with RunWriter(path, [SPEC], run_id="once", write_buffers=0) as writer:
        behind = FallBehind(writer.note_dropped)
        put(writer, 0)
        put(writer, 1)
        for k in range(2, 8):  # 6 of 8 behind: dropped
            assert behind.drop("cam", k, 8, 8)
        writer.note_dropped("cam", 8, 1, DropReason.RING_FULL)  # the camera skipped 8
        assert not behind.drop("cam", 9, 1, 8)  # caught up: the run goes in
        put(writer, 9)
        put(writer, 10)
        assert writer.statistics().frames_dropped == {"cam": 7}
    summary = inspect_run(path).streams[0]
    assert summary.ledger == ((8, 1, "ring_full"), (2, 6, "disk_behind"))
    assert summary.dropped == 7
    assert summary.frames == 4


def test_notes_that_overlap_what_is_recorded_or_noted_add_only_new_ids(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, [SPEC], run_id="overlap", write_buffers=0) as writer:
        for k in (0, 1, 2):
            put(writer, k)
        writer.note_dropped("cam", 1, 3, DropReason.RING_OVERRUN)  # 1, 2 recorded: only 3
        writer.note_dropped("cam", 6, 2, DropReason.RING_FULL)  # ahead: 6, 7
        writer.note_dropped("cam", 5, 4, DropReason.DISK_BEHIND)  # 5 and 8 are new
        writer.note_dropped("cam", 6, 2, DropReason.RING_FULL)  # said again: nothing new
        put(writer, 10)  # 4 and 9 no one named: gap
        writer.note_dropped("cam", 11, 0, "restart of actor stats")  # an event, kept
        put(writer, 11)
    summary = inspect_run(path).streams[0]
    assert summary.ledger == (
        (3, 1, "ring_overrun"),
        (6, 2, "ring_full"),
        (5, 1, "disk_behind"),
        (8, 1, "disk_behind"),
        (4, 1, "gap"),
        (9, 1, "gap"),
        (11, 0, "restart of actor stats"),
    )
    lost = sorted(k for first, count, _ in summary.ledger for k in range(first, first + count))
    assert lost == [3, 4, 5, 6, 7, 8, 9]
    assert summary.dropped == 7
    assert summary.frames == 5


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        (3, r"stream 'cam': frame id 3 is not above the last one recorded \(5\)"),
        (5, r"stream 'cam': frame id 5 is not above the last one recorded \(5\)"),
        (7, r"stream 'cam': frame id 7 is already in the drop ledger"),
    ],
)
def test_a_frame_id_recorded_or_dropped_already_is_refused_and_the_run_goes_on(
    tmp_path: Path, bad: int, match: str
) -> None:
    path = tmp_path / "run.h5"
    with RunWriter(path, [SPEC], run_id="order", write_buffers=0) as writer:
        for k in (0, 1, 5):  # 2..4: gap
            put(writer, k)
        writer.note_dropped("cam", 7, 1, DropReason.RING_FULL)
        with pytest.raises(ValueError, match=match):
            put(writer, bad)
        with pytest.raises(ValueError, match=match):
            put(writer, bad)  # refused again, the same way: nothing changed
        assert writer.failed is None
        put(writer, 6)
        put(writer, 8)
    summary = inspect_run(path).streams[0]
    assert summary.frames == 5
    assert summary.ledger == ((2, 3, "gap"), (7, 1, "ring_full"))
    with h5py.File(path, "r") as f:
        assert list(f["cam/frame_id"][:]) == [0, 1, 5, 6, 8]
        assert [int(f["cam/frames"][row][0, 0]) for row in range(5)] == [0, 1, 5, 6, 8]
