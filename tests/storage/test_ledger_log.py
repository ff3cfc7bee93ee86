"""The drop ledger's log lines: the first few one by one, then at most one per 10 s."""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.storage import RunWriter, StreamSpec


def test_a_gap_per_frame_is_every_entry_in_the_ledger_but_not_a_log_line_per_frame(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = StreamSpec("cam", (2, 2), np.dtype(np.uint8))
    frame = np.zeros((2, 2), np.uint8)
    with (
        caplog.at_level(logging.WARNING, logger="rigd.storage"),
        RunWriter(tmp_path / "run.h5", [spec], run_id="gaps") as writer,
    ):
        for k in range(200):
            writer.write("cam", frame, 2 * k, 1_700_000_000_000_000_000 + k)
    lines = [r.getMessage() for r in caplog.records if "not recorded" in r.getMessage()]
    assert 5 <= len(lines) <= 7  # the first five, then one per 10 s (a slow machine: two)
    assert lines[0] == "cam: 1 frame(s) from id 1 not recorded (gap)"
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert len(f["cam/dropped"]) == 199
        assert f["cam"].attrs["frames_dropped"] == 199


def test_an_event_in_the_ledger_is_said_as_an_event_not_as_frames_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spec = StreamSpec("cam", (2, 2), np.dtype(np.uint8))
    with (
        caplog.at_level(logging.INFO, logger="rigd.storage"),
        RunWriter(tmp_path / "run.h5", [spec], run_id="events") as writer,
    ):
        writer.write("cam", np.zeros((2, 2), np.uint8), 0, 1_700_000_000_000_000_000)
        writer.note_dropped("cam", 1, 0, "actor camera restarted (1)")

    said = [r for r in caplog.records if "restarted" in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in said] == [
        (
            logging.INFO,
            "cam: at frame id 1: actor camera restarted (1) (an event in the drop ledger; "
            "no frame lost)",
        )
    ]
    with h5py.File(tmp_path / "run.h5", "r") as f:
        assert f["cam"].attrs["frames_dropped"] == 0
        assert [int(r["count"]) for r in f["cam/dropped"]] == [0]
