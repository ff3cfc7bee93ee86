"""A recorder that falls behind drops the oldest frames, not the source's pace.

A lossless link holds its writer back when the reader is a whole ring
behind: for a recorder on a camera, a disk stall longer than the ring's
slack becomes a camera stall, and a camera that waits loses frames it never
accounts for. ``FallBehind`` keeps the ring's slack for the disk's hiccups
and, once the recorder is ``high`` of the ring behind, releases the oldest
frames unwritten until it is only ``low`` behind (hysteresis: the drops come
in runs, and the recorder gets back a good part of the ring at once). Each
run of dropped frames is one entry in the stream's drop ledger, reason
``disk_behind`` (``DropReason.DISK_BEHIND``), so the file says what it lacks.

Releasing a frame costs microseconds, so the recorder drops its way back
as soon as its current write returns. The ring is the buffer for the disk's
stalls: a stall of S seconds at R frames/s needs ``slots >= R * S``; while
the disk stays too slow the recorder runs between ``low`` and ``high`` of
the ring behind, so one write longer than ``(1 - high) * slots / R`` still
holds the source back (README, "Recording"; BENCHMARKS.md, issue 25 item 4).
"""

from __future__ import annotations

from collections.abc import Callable

from rigd.storage import DropReason

#: Start dropping at this share of the ring behind, stop at ``LOW``.
HIGH = 0.75
LOW = 0.25


class FallBehind:
    """Decides, per frame of a lossless input, whether the recorder drops it.

    Args:
        note: ``RunWriter.note_dropped`` (stream, first_id, count, reason).
        high, low: shares of the ring (0 < low < high < 1).

    Raises:
        ValueError: ``low`` and ``high`` are not 0 < low < high < 1.
    """

    def __init__(
        self,
        note: Callable[[str, int, int, str], None],
        high: float = HIGH,
        low: float = LOW,
    ) -> None:
        if not 0 < low < high < 1:
            raise ValueError(f"need 0 < low < high < 1 (shares of the ring), got {low}, {high}")
        self._note = note
        self.high = high
        self.low = low
        # stream -> [first frame id, count] of the run of frames being dropped.
        self._runs: dict[str, list[int]] = {}
        #: Frames dropped so far, per stream.
        self.dropped: dict[str, int] = {}

    def drop(self, stream: str, frame_id: int, behind: int, slots: int) -> bool:
        """True: release this frame unwritten (it is counted for the ledger).

        ``behind``: frames committed to the ring and not yet taken by the
        recorder, this one included (``reader.committed - frame.seq``).
        """
        run = self._runs.get(stream)
        if run is None:
            if behind < self.high * slots:
                return False
        elif behind > self.low * slots and frame_id == run[0] + run[1]:
            run[1] += 1
            self.dropped[stream] = self.dropped.get(stream, 0) + 1
            return True
        else:
            self.end(stream)
            if behind <= self.low * slots:
                return False
        self._runs[stream] = [frame_id, 1]
        self.dropped[stream] = self.dropped.get(stream, 0) + 1
        return True

    def end(self, stream: str | None = None) -> None:
        """Put the open run of dropped frames (of ``stream``, or of all) in the ledger."""
        for name in [stream] if stream is not None else list(self._runs):
            run = self._runs.pop(name, None)
            if run is not None:
                self._note(name, run[0], run[1], DropReason.DISK_BEHIND)
