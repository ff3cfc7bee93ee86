"""``StreamReader.read_into``: a raw stream's frames read at their chunk's offset
(one pread each, as ``RunWriter`` writes them), HDF5 reading every other layout."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from rigd.storage import RunWriter, StreamReader, StreamSpec


def _recorded(path: Path, count: int, compression: str | None = None) -> np.ndarray:
    frames = np.random.default_rng(3).integers(0, 4000, (count, 6, 10), dtype=np.uint16)
    spec = StreamSpec("cam", (6, 10), np.dtype(np.uint16), compression=compression)
    with RunWriter(path, [spec], run_id="r") as writer:
        for k, frame in enumerate(frames):
            writer.write("cam", frame, k, 1_700_000_000_000_000_000 + k)
    return frames


def _read_all(reader: StreamReader, out: np.ndarray[Any, Any]) -> np.ndarray:
    got = []
    for i in range(len(reader)):
        reader.read_into(i, out)
        got.append(out.copy())
    return np.array(got)


@pytest.mark.parametrize("compression", [None, "lz4"])
def test_every_frame_reads_as_hdf5_reads_it(tmp_path: Path, compression: str | None) -> None:
    path = tmp_path / "run.h5"
    frames = _recorded(path, 2 * 7 + 1, compression)  # a last chunk holding one frame
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["cam/frames"][:], frames)

    with StreamReader(path, "cam") as reader:
        np.testing.assert_array_equal(_read_all(reader, np.empty((6, 10), np.uint16)), frames)
        # Backwards, and again: each read is its own.
        out = np.empty((6, 10), np.uint16)
        for i in reversed(range(len(reader))):
            reader.read_into(i, out)
            np.testing.assert_array_equal(out, frames[i])


def test_a_raw_stream_is_read_without_hdf5s_selections(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "run.h5"
    frames = _recorded(path, 9)
    with StreamReader(path, "cam") as reader:

        def refused(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("read through HDF5")

        monkeypatch.setattr(reader._frames, "read_direct", refused)
        np.testing.assert_array_equal(_read_all(reader, np.empty((6, 10), np.uint16)), frames)
        # A buffer the file's bytes cannot go into as they are: HDF5 converts.
        with pytest.raises(AssertionError, match="through HDF5"):
            reader.read_into(0, np.empty((6, 10), np.float32))


def test_buffers_of_another_dtype_get_hdf5s_conversion(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    frames = _recorded(path, 5)
    with StreamReader(path, "cam") as reader:
        as_float = np.empty((6, 10), np.float32)
        reader.read_into(3, as_float)
        np.testing.assert_array_equal(as_float, frames[3].astype(np.float32))
        big_endian = np.empty((6, 10), ">u2")
        reader.read_into(4, big_endian)
        np.testing.assert_array_equal(big_endian, frames[4])
        with pytest.raises((IndexError, ValueError)):
            reader.read_into(5, np.empty((6, 10), np.uint16))


def test_a_file_still_being_written_reads_the_frames_its_writer_flushed(tmp_path: Path) -> None:
    path = tmp_path / "live.h5"
    frames = np.random.default_rng(4).integers(0, 4000, (7, 6, 10), dtype=np.uint16)
    spec = StreamSpec("cam", (6, 10), np.dtype(np.uint16))
    with RunWriter(path, [spec], run_id="live") as writer:
        for k, frame in enumerate(frames):
            writer.write("cam", frame, k, 1_700_000_000_000_000_000 + k)
        writer.flush()
        with StreamReader(path, "cam") as reader:
            assert len(reader) == 7
            got = _read_all(reader, np.empty((6, 10), np.uint16))
    np.testing.assert_array_equal(got, frames)


def test_a_closed_reader_reads_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _recorded(path, 3)
    reader = StreamReader(path, "cam")
    reader.close()
    # A descriptor that may take the closed one's number.
    with open(path, "rb"), pytest.raises((ValueError, OSError, RuntimeError)):
        reader.read_into(0, np.empty((6, 10), np.uint16))
