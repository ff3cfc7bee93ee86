"""Drop notes: frame ids a ring's writer skipped, and why, read by its readers."""

from __future__ import annotations

import multiprocessing as mp
from typing import Any

import numpy as np
import pytest

from rigd.exceptions import RingClosedError
from rigd.storage import DropNote, FrameRing, end_spans, gap_spans
from tests.storage.test_ring import ring_name

CTX = mp.get_context("spawn")


def write_with_drops(name: str, n: int) -> None:
    """Child process: frames 0..n-1, every third one dropped as ``missing_packets``."""
    ring = FrameRing.attach(name)
    writer = ring.writer()
    for k in range(n):
        if k % 3 == 2:
            writer.note_dropped(k, 1, "missing_packets")
            continue
        writer.put(np.full(4, k, np.uint16), frame_id=k)
    writer.close()
    ring.close()


def test_a_reader_in_another_process_has_every_note_below_the_frame_it_holds() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=4) as ring:
        reader = ring.reader("lossless")
        child = CTX.Process(target=write_with_drops, args=(ring.name, 30))
        child.start()
        notes: list[DropNote] = []
        try:
            for frame in reader:
                notes.extend(reader.drop_notes())
                noted = {n.first_id for n in notes}
                assert {k for k in range(frame.frame_id) if k % 3 == 2} <= noted
            notes.extend(reader.drop_notes())  # the last one, after frame 28
        finally:
            child.join(timeout=30)

        assert child.exitcode == 0
        assert notes == [DropNote(k, 1, "missing_packets") for k in range(2, 30, 3)]
        assert reader.notes_lost == 0


def test_a_reader_more_than_64_notes_behind_counts_the_ones_it_lost() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=4) as ring:
        writer = ring.writer()
        reader = ring.reader("latest")

        for k in range(70):
            writer.note_dropped(k, 1, "timeout")
        notes = reader.drop_notes()

        assert [n.first_id for n in notes] == list(range(6, 70))
        assert reader.notes_lost == 6
        assert reader.drop_notes() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((5, 0, "timeout"), r"^a drop note needs first_id >= 0 and count >= 1, got 5 and 0$"),
        (
            (5, 1, "a reason longer than twenty-four bytes"),
            r"^a drop reason is 1 to 24 ASCII characters \(e\.g\. 'missing_packets'\), "
            r"got 'a reason longer than twenty-four bytes'$",
        ),
        ((5, 1, ""), r"^a drop reason is 1 to 24 ASCII characters"),
        ((5, 1, "d\u00e9faut"), r"^a drop reason is 1 to 24 ASCII characters"),
    ],
)
def test_a_bad_drop_note_is_refused_and_nothing_is_noted(
    args: tuple[Any, ...], message: str
) -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=4) as ring:
        writer = ring.writer()
        reader = ring.reader("lossless")

        with pytest.raises(ValueError, match=message):
            writer.note_dropped(*args)

        assert reader.drop_notes() == []


def test_a_closed_writer_takes_no_drop_note() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=4) as ring:
        writer = ring.writer()
        writer.close()

        with pytest.raises(RingClosedError, match=r"was closed$"):
            writer.note_dropped(0, 1, "timeout")


def test_a_gap_is_split_into_the_noted_spans_and_the_rest_by_the_fallback() -> None:
    notes = [DropNote(12, 2, "timeout"), DropNote(10, 1, "missing_packets"), DropNote(20, 1, "x")]

    spans = gap_spans(9, 16, notes, "gap")

    assert spans == [
        (9, 1, "gap"),
        (10, 1, "missing_packets"),
        (11, 1, "gap"),
        (12, 2, "timeout"),
        (14, 2, "gap"),
    ]
    assert notes == [DropNote(20, 1, "x")], "notes about later ids are kept"


def test_before_the_first_frame_only_the_notes_account_for_missing_ids() -> None:
    notes = [DropNote(0, 2, "missing_packets"), DropNote(1, 1, "missing_packets")]

    assert gap_spans(None, 3, notes, "gap") == [(0, 2, "missing_packets"), (2, 1, "gap")]
    assert notes == []


def test_notes_after_the_last_frame_are_spans_of_their_own_each_id_once() -> None:
    notes = [DropNote(8, 2, "timeout"), DropNote(3, 3, "underrun")]

    assert end_spans(4, notes) == [(4, 2, "underrun"), (8, 2, "timeout")]
    assert notes == []
