"""Drop notes: frame ids a ring's writer skipped, and why, for its readers.

A source that drops a frame instead of writing it (a camera's incomplete
buffer, a driver underrun, a full ring) skips that frame id, and a reader
sees a gap in the ids. A drop note says why: before it commits its next
frame, the writer appends ``(first_id, count, reason)`` to a round robin of
``NOTES`` records in the ring's header page (``_ring_layout.NoteRecord``).
So a reader holding frame ``F`` has every note about ids below ``F``; the
recorder puts them in the run file's drop ledger with their reason
(``gap_spans``). A reader more than ``NOTES`` notes behind loses the oldest
(``lost``); their ids are still a gap, written as ``gap``.

One writer appends, so no lock: a note's fields are stored before
``notes_written`` moves on (x86-64 keeps stores in order), and a reader
checks ``notes_written`` again after copying, to discard records the writer
overwrote meanwhile.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rigd.storage._ring_layout import NOTE_REASON_BYTES, NOTES, Header

__all__ = ["OWN_IDS", "DropNote", "end_spans", "gap_spans", "read_notes", "write_note"]

#: The reason of a marker note, not a drop: the writer's frame ids are its
#: sender's own numbering (``RingWriter.own_ids``), so ids it skips are not
#: frames lost; a recorder records them as they are and ledgers no gap.
OWN_IDS = "own_ids"


@dataclass(frozen=True, slots=True)
class DropNote:
    """``count`` frame ids from ``first_id`` a writer skipped, and why (``reason``)."""

    first_id: int
    count: int
    reason: str


def write_note(hdr: Header, first_id: int, count: int, reason: str) -> None:
    """Append a drop note to the ring's header (the writer's side).

    Raises:
        ValueError: ``count`` is under 1, ``first_id`` negative, or ``reason``
            is empty, not ASCII or longer than 24 bytes.
    """
    if count < 1 or first_id < 0:
        raise ValueError(
            f"a drop note needs first_id >= 0 and count >= 1, got {first_id!r} and {count!r}"
        )
    if not reason or not reason.isascii() or len(reason) > NOTE_REASON_BYTES:
        raise ValueError(
            f"a drop reason is 1 to {NOTE_REASON_BYTES} ASCII characters "
            f"(e.g. 'missing_packets'), got {reason!r}"
        )
    n = int(hdr.notes_written)
    record = hdr.notes[n % NOTES]
    record.first_id = first_id
    record.count = count
    record.reason = reason.encode("ascii")
    hdr.notes_written = n + 1


def read_notes(hdr: Header, cursor: int) -> tuple[list[DropNote], int, int]:
    """The notes written since ``cursor`` (the reader's side).

    Returns:
        ``(notes, new cursor, notes lost)``: the notes in the order written;
        ``lost`` counts those overwritten before this reader got to them.
    """
    written = int(hdr.notes_written)
    start = max(cursor, written - NOTES)
    notes = []
    for k in range(start, written):
        record: Any = hdr.notes[k % NOTES]
        notes.append(
            DropNote(int(record.first_id), int(record.count), bytes(record.reason).decode())
        )
    # Records the writer reused while they were copied are not to be trusted.
    overwritten = max(0, int(hdr.notes_written) - NOTES - start)
    if overwritten:
        notes = notes[overwritten:]
        start += overwritten
    return notes, written, start - cursor


def gap_spans(
    expected: int | None, frame_id: int, notes: list[DropNote], fallback: str
) -> list[tuple[int, int, str]]:
    """Split the ids missing before ``frame_id`` into spans with their reasons.

    Args:
        expected: the id the reader expected next (``None`` before its first frame:
            then only the notes account for ids before ``frame_id``).
        frame_id: the id of the frame the reader has now.
        notes: notes not yet accounted for; those about ids below ``frame_id``
            are used and removed from the list.
        fallback: the reason for missing ids no note covers (``gap``, or
            ``ring_overrun`` when the reader knows it was lapped).

    Returns:
        ``(first_id, count, reason)`` spans covering ``[expected, frame_id)``
        in order, each id once.
    """
    spans: list[tuple[int, int, str]] = []
    keep: list[DropNote] = []
    position = expected
    for note in sorted(notes, key=lambda n: n.first_id):
        if note.first_id >= frame_id:
            keep.append(note)
            continue
        end = min(note.first_id + note.count, frame_id)
        if position is None:
            position = note.first_id
        if end <= position:
            continue  # ids already recorded or accounted for
        first = max(note.first_id, position)
        if first > position:
            spans.append((position, first - position, fallback))
        spans.append((first, end - first, note.reason))
        position = end
    if position is not None and frame_id > position:
        spans.append((position, frame_id - position, fallback))
    notes[:] = keep
    return spans


def end_spans(expected: int | None, notes: list[DropNote]) -> list[tuple[int, int, str]]:
    """The spans of the notes left at the end of a stream (ids after its last
    frame), each id once; ids between them that no note names are not
    spans (nothing says the writer made them). Empties ``notes``."""
    spans: list[tuple[int, int, str]] = []
    position = expected
    for note in sorted(notes, key=lambda n: n.first_id):
        first = note.first_id if position is None else max(note.first_id, position)
        end = note.first_id + note.count
        if end > first:
            spans.append((first, end - first, note.reason))
            position = end
    notes.clear()
    return spans
