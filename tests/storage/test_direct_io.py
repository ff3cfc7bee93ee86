"""Raw chunks written with O_DIRECT: the same file, bit for bit, read live and sealed.

Real run files on the test's directory. Where that file system refuses
O_DIRECT the writer must fall back to the page cache, and these tests
check that instead (the bytes are the same either way).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.storage import RunWriter, StreamSpec


def takes_o_direct(directory: Path) -> bool:
    probe = directory / "probe"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    except OSError:
        return False
    finally:
        probe.unlink(missing_ok=True)
    os.close(fd)
    return True


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def frames(shape: tuple[int, ...], n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(sum(shape) + n)
    return [rng.integers(0, 65535, shape, dtype=np.uint16) for _ in range(n)]


@pytest.mark.parametrize(
    ("shape", "n", "write_buffers"),
    [
        ((512, 512), 12, 8),  # 512 KiB frames from pooled, aligned buffers
        ((250, 250), 12, 8),  # 125,000 bytes: whole blocks direct, the tail buffered
        ((64, 64), 300, 8),  # 32 frames a chunk, a partial chunk rewritten at each flush
        ((512, 512), 6, 0),  # the caller's own (unaligned) arrays: buffered
    ],
)
def test_raw_chunks_written_with_o_direct_read_back_bit_for_bit_live_and_sealed(
    tmp_path: Path, shape: tuple[int, ...], n: int, write_buffers: int
) -> None:
    path = tmp_path / "run.h5"
    data = frames(shape, n)
    before = open_fds()
    writer = RunWriter(
        path, [StreamSpec("cam", shape, np.uint16)], run_id="direct", write_buffers=write_buffers
    )
    half = n // 2
    for k in range(half):
        writer.write("cam", data[k], k, time.time_ns())
    writer.flush()
    # A live SWMR reader sees the frames written so far, not stale pages.
    with h5py.File(path, "r", swmr=True) as live:
        ids = live["cam/frame_id"][:]
        assert list(ids) == list(range(half))
        for k in ids:
            np.testing.assert_array_equal(live["cam/frames"][k], data[k])
    for k in range(half, n):
        writer.write("cam", data[k], k, time.time_ns())
    writer.close()
    stats = writer.statistics()
    assert open_fds() == before, "the O_DIRECT descriptor was left open"
    with h5py.File(path, "r") as f:
        assert f.attrs["run_state"] == "complete"
        np.testing.assert_array_equal(f["cam/frames"][:], np.stack(data))
    if write_buffers and takes_o_direct(tmp_path):
        # Every whole block of every raw chunk went past the page cache.
        blocks = n * (shape[0] * shape[1] * 2 // 4096) * 4096
        assert stats.direct_bytes >= min(blocks, stats.bytes_written) * 0.9
    elif not write_buffers:
        assert stats.direct_bytes == 0  # numpy's arrays are not 4 KiB aligned


def test_direct_io_false_writes_through_the_page_cache(tmp_path: Path) -> None:
    data = frames((512, 512), 4)
    writer = RunWriter(
        tmp_path / "run.h5", [StreamSpec("cam", (512, 512), np.uint16)], run_id="b", direct_io=False
    )
    for k, frame in enumerate(data):
        writer.write("cam", frame, k, time.time_ns())
    writer.close()
    assert writer.statistics().direct_bytes == 0
    with h5py.File(tmp_path / "run.h5", "r") as f:
        np.testing.assert_array_equal(f["cam/frames"][:], np.stack(data))


def test_a_resumed_run_writes_on_with_o_direct_and_keeps_every_frame(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    data = frames((512, 512), 6)
    first = RunWriter(path, [StreamSpec("cam", (512, 512), np.uint16)], run_id="r")
    for k in range(3):
        first.write("cam", data[k], k, time.time_ns())
    first.close()
    resumed = RunWriter.resume(path)
    for k in range(3, 6):
        resumed.write("cam", data[k], k, time.time_ns())
    resumed.close()
    if takes_o_direct(tmp_path):
        assert resumed.statistics().direct_bytes == 3 * 512 * 512 * 2
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["cam/frames"][:], np.stack(data))
        assert list(f["cam/frame_id"][:]) == list(range(6))
