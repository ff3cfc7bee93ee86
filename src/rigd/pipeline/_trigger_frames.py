"""A triggered recording's frames: each event's window in every recorded ring,
written to the run file in order, never a frame twice.

The rings are the pre-trigger buffer: an event's frames are read back from
them (``RingReader.get_at``) when it starts and as its post frames arrive,
copied once, and written with their own ids and stamps. Overlapping windows
are merged by the recorder (``merge`` says whether they meet); frames the
ring lapped before they were written go in the drop ledger, one entry per
run of lost frames.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from rigd._exceptions import EndOfStream, RingBrokenError
from rigd.pipeline._trigger_events import (
    IDLE_S,
    LABEL_BYTES,
    SOURCE_BYTES,
    Event,
    Trigger,
    Window,
    clip,
)
from rigd.storage import DropReason, RunWriter

__all__ = ["EventFrames"]

log = logging.getLogger("rigd.trigger")


class EventFrames:
    """The recorded streams of a triggered recording, and where each stands in the file.

    Args:
        streams: the recorded inputs' ring readers (``latest`` links), by name.
        writer: the run file, with an ``events`` table of
            ``event_table_dtype(streams)`` rows.
        pre, post: frames kept before and after the trigger, per stream.
        pre_s, post_s: the same in seconds, instead (by the frames' stamps).
        post_timeout_s: an event whose stream brings no frame for this long is
            closed short.
    """

    def __init__(
        self,
        streams: Mapping[str, Any],
        writer: RunWriter,
        *,
        pre: int,
        post: int,
        pre_s: float | None,
        post_s: float | None,
        post_timeout_s: float,
    ) -> None:
        self.streams = dict(streams)
        self.writer = writer
        self.pre, self.post = pre, post
        self.pre_s, self.post_s = pre_s, post_s
        self.post_timeout_s = post_timeout_s
        #: The streams whose writer closed the ring (or died).
        self.ended: set[str] = set()
        #: Per stream: the next sequence number after the last frame written,
        #: the rows written, the last frame id written.
        self._next_seq: dict[str, int] = dict.fromkeys(self.streams, 0)
        self._rows: dict[str, int] = dict.fromkeys(self.streams, 0)
        self._last_id: dict[str, int] = dict.fromkeys(self.streams, -1)

    @property
    def all_ended(self) -> bool:
        """Whether every recorded stream ended."""
        return len(self.ended) == len(self.streams)

    def open_event(self, trigger: Trigger) -> Event:
        """A new event for ``trigger``: its windows, and its row in the table."""
        windows = {name: self.window(name, trigger) for name in self.streams}
        event = Event(-1, trigger, windows)
        event.row = self.writer.append_row("events", self.row(event))
        return event

    def note(self, text: str) -> None:
        """Put a note in every recorded stream's drop ledger."""
        for name in self.streams:
            self.writer.note_dropped(name, 0, 0, text)

    def wait_for(self, events: Iterable[Event]) -> bool:
        """Wait (at most 50 ms) for a frame an open event needs; True if there
        was one to wait for. Otherwise note which streams ended, and False."""
        for event in events:
            for name, window in event.windows.items():
                if not window.done:
                    self._wait_frames(name, window.next + 1)
                    return True
        for name, reader in self.streams.items():
            if name not in self.ended:
                self._wait_frames(name, reader.committed + 1, timeout=0.0)
        return False

    def _seq_at(self, reader: Any, time_ns: int) -> int:
        """The sequence number of the first frame acquired at or after
        ``time_ns`` (the next frame to come, if none is in the ring yet)."""
        seq = reader.committed
        oldest = max(0, seq - reader.slot_count)
        while seq > oldest:
            try:
                frame = reader.get_at(seq - 1)
            except LookupError:
                break
            stamp = frame.timestamp_ns
            reader.release(frame)
            if stamp < time_ns:
                break
            seq -= 1
        return int(seq)

    def bounds(self, name: str, trigger: Trigger) -> tuple[int, int | None, int | None]:
        """(first seq, one past the last seq or None, last time or None)."""
        reader = self.streams[name]
        at = self._seq_at(reader, trigger.time_ns)
        if self.pre_s is not None:
            start = self._seq_at(reader, trigger.time_ns - int(self.pre_s * 1e9))
        else:
            start = at - self.pre
        if self.post_s is not None:
            return start, None, trigger.time_ns + int(self.post_s * 1e9)
        return start, at + self.post, None

    def window(self, name: str, trigger: Trigger) -> Window:
        start, end, end_ns = self.bounds(name, trigger)
        reader = self.streams[name]
        oldest = max(0, reader.committed - reader.slot_count + 1)
        # Never a frame twice: an earlier event wrote up to _next_seq.
        floor = max(0, self._next_seq[name])
        missing = 0
        if self.pre_s is not None and floor < oldest:
            # The window starts at a time: the frames older than the ring's
            # oldest, back to it, are estimated from the stream's rate.
            missing = self._frames_before_ring(reader, trigger.time_ns - int(self.pre_s * 1e9))
        elif start < oldest:
            missing = oldest - max(start, floor)
        start = max(start, floor, oldest)
        window = Window(start=start, end=end, end_ns=end_ns, next=start)
        window.trigger_seq = self._seq_at(reader, trigger.time_ns)
        if missing > 0:
            first = self._id_at(reader, oldest)
            self.writer.note_dropped(
                name,
                max(0, first - missing),
                missing,
                "pre-trigger frames no longer in the ring (make the link's slots larger)",
            )
            window.short = True
        return window

    def _id_at(self, reader: Any, seq: int) -> int:
        try:
            frame = reader.get_at(seq)
        except LookupError:
            return 0
        frame_id = int(frame.frame_id)
        reader.release(frame)
        return frame_id

    def _frames_before_ring(self, reader: Any, since_ns: int) -> int:
        """How many frames acquired since ``since_ns`` are no longer in the ring
        (estimated from the ring's own rate), 0 if the ring reaches back that far."""
        head = reader.committed
        oldest = max(0, head - reader.slot_count + 1)
        if head - oldest < 2:
            return 0
        try:
            first = reader.get_at(oldest)
            first_ns = first.timestamp_ns
            reader.release(first)
            last = reader.get_at(head - 1)
            last_ns = last.timestamp_ns
            reader.release(last)
        except LookupError:
            return 0
        if first_ns <= since_ns or last_ns <= first_ns:
            return 0
        period = (last_ns - first_ns) / (head - 1 - oldest)
        # No more than the stream ever had before the ring's oldest frame.
        return int(min(oldest, (first_ns - since_ns) // period))

    def merge(self, event: Event, trigger: Trigger) -> bool:
        """Merge ``trigger`` into ``event`` if their windows meet (decided on
        the first recorded stream); then extend every stream's window."""
        first = next(iter(self.streams))
        window = event.windows[first]
        start, end, end_ns = self.bounds(first, trigger)
        if window.end_ns is not None:
            reach = trigger.time_ns - int((self.pre_s or 0) * 1e9)
            if reach > window.end_ns:
                return False
        elif window.end is not None and start > window.end:
            return False
        for name in self.streams:
            window = event.windows[name]
            _, end, end_ns = self.bounds(name, trigger)
            if end is not None and window.end is not None and end > window.end:
                window.end = end
                window.done = False
            if end_ns is not None and window.end_ns is not None and end_ns > window.end_ns:
                window.end_ns = end_ns
                window.done = False
        event.merged += 1
        if trigger.label:
            # Every label is kept (as far as the column holds them).
            labels = [x for x in (event.trigger.label, trigger.label) if x]
            event.trigger.label = "; ".join(labels)
        self.update_row(event)
        return True

    def advance(self, event: Event) -> bool:
        writer = self.writer
        wrote = False
        for name, reader in self.streams.items():
            window = event.windows[name]
            while not window.done:
                if window.end is not None and window.next >= window.end:
                    window.done = True
                elif window.next >= reader.committed:
                    if name in self.ended:
                        window.done = True  # the stream ended short of the window
                        event.complete = False
                    break
                else:
                    wrote |= self._write_one(name, reader, window, writer)
        now = time.monotonic()
        if wrote:
            event.last_progress = now
            self.update_row(event)
        elif not event.done and now - event.last_progress > self.post_timeout_s:
            # A stream that sends nothing after the trigger must not keep the
            # event (and what was recorded of it) open for ever.
            log.warning(
                "an event (trigger at %d ns) got no frame for %.1f s: closed short",
                event.trigger.time_ns,
                self.post_timeout_s,
            )
            event.complete = False
            for window in event.windows.values():
                window.done = True
        return wrote

    def _write_one(self, name: str, reader: Any, window: Window, writer: RunWriter) -> bool:
        seq = window.next
        try:
            frame = reader.get_at(seq)
        except LookupError:
            # Overwritten before it was written (the disk fell behind the
            # camera): one ledger entry for the whole run of lost frames, and
            # on from the oldest frame still in the ring.
            oldest = max(0, reader.committed - reader.slot_count + 1)
            lost = max(1, oldest - seq)
            first_id = self._last_id[name] + 1 if self._last_id[name] >= 0 else 0
            writer.note_dropped(name, first_id, lost, DropReason.RING_OVERRUN)
            writer.expect_gap(name)  # the ids after the gap are the camera's, not our estimate
            window.next = seq + lost
            self._last_id[name] = first_id + lost - 1
            window.short = True
            return False
        if window.end_ns is not None and frame.timestamp_ns > window.end_ns:
            reader.release(frame)
            window.done = True
            return False
        window.next += 1
        data = np.array(frame.array, copy=True)  # the camera may lap this slot meanwhile
        frame_id, stamp = frame.frame_id, frame.timestamp_ns
        if not reader.release(frame):
            writer.note_dropped(name, frame_id, 1, DropReason.RING_OVERRUN)
            window.short = True
            return False
        if window.rows == 0:
            window.first_row = self._rows[name]
        if seq != self._next_seq[name]:
            writer.expect_gap(name)  # between events: not a drop
        writer.write(name, data, frame_id, stamp)
        if seq == window.trigger_seq and name == next(iter(self.streams)):
            window.trigger_id = int(frame_id)  # a soft or scheduled trigger's frame
        window.rows += 1
        self._rows[name] += 1
        self._next_seq[name] = seq + 1
        self._last_id[name] = frame_id
        return True

    def row(self, event: Event) -> tuple[Any, ...]:
        trigger = event.trigger
        frame_id = trigger.frame_id
        if frame_id < 0:  # soft or scheduled: the first frame at or after it
            frame_id = event.windows[next(iter(self.streams))].trigger_id
        row: list[Any] = [
            trigger.time_ns,
            frame_id,
            clip(trigger.source, SOURCE_BYTES),
            clip(trigger.label, LABEL_BYTES),
            event.merged,
            int(event.complete and event.done and not any(w.short for w in event.windows.values())),
        ]
        for name in self.streams:
            window = event.windows[name]
            row += [window.first_row, window.rows]
        return tuple(row)

    def update_row(self, event: Event) -> None:
        self.writer.update_row("events", event.row, self.row(event))

    def _wait_frames(self, name: str, count: int, timeout: float = IDLE_S) -> None:
        try:
            self.streams[name].wait_committed(count, timeout)
        except TimeoutError:
            pass
        except (EndOfStream, RingBrokenError):
            self.ended.add(name)
