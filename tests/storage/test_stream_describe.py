"""describe_stream: what planning needs of a recorded stream, read once per file state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rigd.storage import RunWriter, StreamReader, StreamSpec, describe_stream


def _record(path: Path, shape: tuple[int, ...], frames: int = 3) -> None:
    with RunWriter(path, [StreamSpec("camera", shape, np.dtype("<u2"))], run_id="d") as w:
        for i in range(frames):
            w.write("camera", np.full(shape, i, "<u2"), i, 1_700_000_000_000_000_000 + i)


def test_a_stream_is_described_as_its_reader_finds_it(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _record(path, (4, 6))

    described = describe_stream(path)

    with StreamReader(path) as reader:
        assert (described.name, described.shape, described.dtype, described.kind) == (
            reader.name,
            reader.shape,
            reader.dtype,
            reader.kind,
        )
    assert described.longest_message == 0


def test_a_file_replaced_at_the_same_path_is_described_again(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _record(path, (4, 6))
    assert describe_stream(path, "camera").shape == (4, 6)
    path.unlink()

    _record(path, (8, 2), frames=5)

    assert describe_stream(path, "camera").shape == (8, 2)


def test_a_missing_stream_or_file_is_refused_as_the_reader_refuses_it(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    _record(path, (4, 6))

    with pytest.raises(ValueError, match=r"has no stream 'nope'; it has \['camera'\]"):
        describe_stream(path, "nope")
    with pytest.raises(FileNotFoundError):
        describe_stream(tmp_path / "absent.h5")
