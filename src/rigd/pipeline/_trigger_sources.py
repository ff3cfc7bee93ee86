"""Where a TriggeredRecorder's triggers come from, gathered in time order.

Four kinds: a soft trigger (``trigger(label)`` through the recorder's
handle, from any thread), a schedule (every ``schedule_s`` from the start),
an events input (every record is a trigger: a ``FrameTrigger``, a TTL line,
a behaviour detector), and an expression over a records input evaluated per
record (with ``edge``: only when it becomes true). Whether a trigger is
taken (armed, hold-off, merging, the maximum) is the recorder's decision.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rigd._exceptions import EndOfStream, RingBrokenError, WouldBlock
from rigd.pipeline._expression import Expression, History
from rigd.pipeline._trigger_events import IDLE_S, Trigger

__all__ = ["TriggerSources"]


class TriggerSources:
    """A recorder's trigger inputs, soft triggers and schedule.

    Args:
        event_inputs: inputs whose every record is a trigger.
        condition: the expression over ``condition_input``'s records, if any.
        condition_input: the records input it is evaluated on.
        fields: the names of that input's record values, in order.
        edge: trigger when the condition becomes true (``True``), or on every
            record where it holds.
        schedule_s: also trigger every this many seconds from ``attach``.
    """

    def __init__(
        self,
        event_inputs: Sequence[str],
        condition: Expression | None = None,
        condition_input: str | None = None,
        fields: Sequence[str] = (),
        edge: bool = True,
        schedule_s: float | None = None,
    ) -> None:
        self.event_inputs = tuple(event_inputs)
        self.condition = condition
        self.condition_input = condition_input
        self.fields = [str(f) for f in fields]
        self.edge = bool(edge)
        self.schedule_s = schedule_s
        self._soft: queue.SimpleQueue[Trigger] = queue.SimpleQueue()
        self._poke = threading.Event()
        self._readers: dict[str, Any] = {}
        self._stashed: list[Trigger] = []
        self._next_schedule: float | None = None
        self._history = History(np, condition.history if condition is not None else {})
        self._was_true = False

    @property
    def names(self) -> set[str]:
        """The inputs that bring triggers (not recorded)."""
        names = set(self.event_inputs)
        if self.condition_input is not None:
            names.add(self.condition_input)
        return names

    def soft(self, label: str = "") -> None:
        """A soft trigger, now; safe from any thread."""
        self._soft.put(Trigger(time.time_ns(), -1, "soft", label))
        self._poke.set()

    def attach(self, readers: Mapping[str, Any]) -> None:
        """Start: the ring readers of ``names`` (every one linked), and the schedule.

        Raises:
            ValueError: ``fields`` do not name the condition input's record values.
        """
        self._readers = {n: readers[n] for n in sorted(self.names)}
        source = self.condition_input
        if self.condition is not None and source is not None:
            width = int(np.prod(readers[source].shape))
            if len(self.fields) != width:
                raise ValueError(
                    f"trigger fields {self.fields} name {len(self.fields)} values, but the "
                    f"records of {source!r} have {width}"
                )
            self._history = History(np, self.condition.history)
            self._was_true = False
        self._stashed = []
        self._next_schedule = (
            time.monotonic() + self.schedule_s if self.schedule_s is not None else None
        )

    def collect(self) -> list[Trigger]:
        """Every trigger since the last call, oldest first; never waits."""
        found, self._stashed = self._stashed, []
        while True:
            try:
                found.append(self._soft.get_nowait())
            except queue.Empty:
                break
        self._poke.clear()
        if self._next_schedule is not None and time.monotonic() >= self._next_schedule:
            self._next_schedule += self.schedule_s or 0.0
            found.append(Trigger(time.time_ns(), -1, "schedule"))
        for name, reader in self._readers.items():
            while True:
                try:
                    frame = reader.get_nowait()
                except (WouldBlock, EndOfStream, RingBrokenError):
                    break
                found.extend(self._decide(name, frame))
        found.sort(key=lambda t: t.time_ns)
        return found

    def wait(self, timeout: float = IDLE_S) -> None:
        """Wait at most ``timeout`` seconds for a trigger input's record (kept
        for the next ``collect``) or a soft trigger."""
        if self._readers:
            name, reader = next(iter(self._readers.items()))
            try:
                self._stashed.extend(self._decide(name, reader.get(timeout=timeout)))
            except (TimeoutError, EndOfStream, RingBrokenError):
                pass
            return
        self._poke.wait(timeout)

    def _decide(self, name: str, frame: Any) -> list[Trigger]:
        """A record of a trigger input: a trigger, or not."""
        with frame:
            if name in self.event_inputs or self._holds(frame.array):
                return [Trigger(frame.timestamp_ns, frame.frame_id, name)]
        return []

    def _holds(self, record: np.ndarray[Any, Any]) -> bool:
        assert self.condition is not None
        values = {
            name: np.float64(v) for name, v in zip(self.fields, record.reshape(-1), strict=True)
        }
        holds = self.condition.holds(np, values, self._history.past())
        self._history.push(values)
        fire = holds and not (self.edge and self._was_true)
        self._was_true = holds
        return fire
