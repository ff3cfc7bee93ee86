"""A run file on a disk that fills (a real 20 MB tmpfs): every frame whose bytes
reached the disk stays readable, not only those of the last timed flush."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd._exceptions import RecordingError
from rigd.storage import RunWriter, StreamSpec, inspect_run
from tests.helpers import small_tmpfs


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 20 MB tmpfs (needs root and mount)."""
    with small_tmpfs(tmp_path / "small") as data:
        yield data


@pytest.mark.parametrize("shape", [(512, 512), (128, 128)])
def test_every_frame_that_reached_a_full_disk_stays_in_the_file(
    tmpfs: Path, shape: tuple[int, int]
) -> None:
    # Was: 512 KiB frames, ~38 on the disk, 1 in the file (the last flush's).
    path = tmpfs / "full.h5"
    writer = RunWriter(path, [StreamSpec("cam", shape, np.dtype("uint16"))], run_id="full")
    frame = np.empty(shape, np.uint16)
    written = 0
    failed: RecordingError | None = None
    for k in range(100_000):
        frame.fill(k)
        try:
            writer.write("cam", frame, k, time.time_ns())
        except RecordingError as exc:
            failed = exc
            break
        written = k + 1
    assert failed is not None, "20 MB held 100,000 frames"
    message = str(failed)
    assert "No space left on device" in message
    assert str(path) in message
    kept = int(re.search(r"'cam': (\d+)", message)[1])  # type: ignore[index]
    with pytest.raises(RecordingError):
        writer.close()
    assert sorted(p.name for p in tmpfs.iterdir()) == ["full.h5"]  # the reserve is gone
    summary = inspect_run(path)
    assert summary.run_state == "recovered"
    (cam,) = summary.streams
    with h5py.File(path, "r") as f:
        per_chunk = f["cam/frames"].chunks[0]
        ids = f["cam/frame_id"][:]
        frames = f["cam/frames"]
        assert all((frames[i] == i).all() for i in range(len(ids)))
    assert cam.frames == kept
    np.testing.assert_array_equal(ids, np.arange(kept))
    # Only frames still on their way (a chunk being gathered, the 8 chunks the
    # writer may queue for the disk) never reached it.
    assert written - 9 * per_chunk <= kept <= written
    # The disk held them: ~20 MB of frames, not one flush's worth.
    assert kept * frame.nbytes > 16e6
