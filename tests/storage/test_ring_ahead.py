"""A lossless reader that holds several frames at once (``get_ahead``), as a bridge's sender."""

from __future__ import annotations

import os
from itertools import count

import numpy as np
import pytest

from rigd.exceptions import EndOfStream, WouldBlock
from rigd.storage import FrameRing, ReaderPolicy

_names = count()


def ring_name() -> str:
    return f"ta{os.getpid()}-{next(_names)}"


def frame(k: int) -> np.ndarray:
    return np.full(4, k, np.uint16)


def test_frames_got_ahead_stay_intact_and_hold_the_writer_back_until_released_through() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=3) as ring:
        writer, reader = ring.writer(), ring.reader()
        for k in range(3):
            writer.put(frame(k), frame_id=k)
        held = [reader.get_ahead(timeout=1) for _ in range(3)]
        assert [f.frame_id for f in held] == [0, 1, 2]
        with pytest.raises(WouldBlock):  # all three slots are held
            writer.put_nowait(frame(3))
        with pytest.raises(TimeoutError):  # nothing after them yet
            reader.get_ahead(timeout=0)

        reader.release_through(held[1])  # frames 0 and 1 are done with

        writer.put_nowait(frame(3), frame_id=3)
        writer.put_nowait(frame(4), frame_id=4)
        with pytest.raises(WouldBlock):
            writer.put_nowait(frame(5))
        np.testing.assert_array_equal(held[2].array, frame(2))  # never overwritten
        assert [reader.get_ahead(timeout=1).frame_id for _ in range(2)] == [3, 4]
        assert ring.statistics().readers[0].frames_read == 2


def test_the_stream_ends_after_the_frames_got_ahead() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=4) as ring:
        writer, reader = ring.writer(), ring.reader()
        writer.put(frame(0), frame_id=0)
        writer.put(frame(1), frame_id=1)
        writer.close()
        first, second = reader.get_ahead(timeout=1), reader.get_ahead(timeout=1)
        with pytest.raises(EndOfStream):
            reader.get_ahead(timeout=1)
        reader.release_through(second)
        reader.release_through(first)  # released already: nothing to do
        assert ring.statistics().readers[0].frames_read == 2


def test_a_latest_reader_or_a_frame_not_got_ahead_is_refused() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=4) as ring:
        writer = ring.writer()
        latest, lossless = ring.reader(ReaderPolicy.LATEST), ring.reader()
        writer.put(frame(0), frame_id=0)
        with pytest.raises(ValueError, match="needs a reader with policy lossless"):
            latest.get_ahead(timeout=1)
        got = lossless.get(timeout=1)
        with pytest.raises(ValueError, match="was not got with get_ahead"):
            lossless.release_through(got)
