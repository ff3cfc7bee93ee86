"""Task events: what happened to each actor call and task, and when.

Each process records the events it sees: the caller ``SUBMITTED``, the actor
``RUNNING`` and ``FINISHED`` or ``FAILED`` (for tasks, the head records
``RUNNING`` when it dispatches and the submitter records the end). Events are
buffered and sent to the head in batches (every ``FLUSH_S`` at most, so
recording costs an append per event, well under the 10% of a call's latency
the issue allows); the head merges them by task id into a bounded log that
``rigd.state.list_tasks()`` reads. Restarts of actors are logged too.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from enum import IntEnum
from typing import Any

__all__ = ["FLUSH_S", "EventBuffer", "TaskLog", "TaskState"]

#: A process sends its buffered events to the head at least this often.
FLUSH_S = 0.2


class TaskState(IntEnum):
    """Where a call or task is; later states win when events arrive out of order."""

    SUBMITTED = 0
    RUNNING = 1
    FINISHED = 2
    FAILED = 3
    ACTOR_RESTARTED = 4


Event = tuple[str, int, float, "str | None", "str | None", "str | None"]


class EventBuffer:
    """The events this process recorded and has not yet sent to the head."""

    __slots__ = ("_events", "_on_first", "last_flush")

    def __init__(self, on_first: Callable[[], None] | None = None) -> None:
        self._events: collections.deque[Event] = collections.deque()
        self.last_flush = time.monotonic()
        # Called when an event lands in an empty buffer: the flusher may be
        # asleep with no timeout (one wake per flush interval, not per call).
        self._on_first = on_first

    def __len__(self) -> int:
        return len(self._events)

    def record(
        self,
        task_id: str,
        state: TaskState,
        name: str | None = None,
        actor_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Note one event; safe from any thread."""
        first = not self._events
        self._events.append((task_id, int(state), time.time(), name, actor_id, error))
        if first and self._on_first is not None:
            self._on_first()

    def drain(self) -> list[Event]:
        """Take every buffered event."""
        out = []
        while self._events:
            out.append(self._events.popleft())
        self.last_flush = time.monotonic()
        return out


class TaskLog:
    """The head's record of recent tasks, merged from every process's events."""

    MAX_TASKS = 10_000

    def __init__(self) -> None:
        self._tasks: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()

    def add(self, events: list[Event]) -> None:
        """Merge a batch of events."""
        for task_id, state, at, name, actor_id, error in events:
            row = self._tasks.get(task_id)
            if row is None:
                row = self._tasks[task_id] = {
                    "task_id": task_id,
                    "name": name,
                    "actor_id": actor_id,
                    "state": state,
                    "submitted_at": None,
                    "started_at": None,
                    "finished_at": None,
                    "error": None,
                }
                while len(self._tasks) > self.MAX_TASKS:
                    self._tasks.popitem(last=False)
            row["name"] = row["name"] or name
            row["actor_id"] = row["actor_id"] or actor_id
            if state >= row["state"]:
                row["state"] = state
            if state == TaskState.SUBMITTED:
                row["submitted_at"] = at
            elif state == TaskState.RUNNING:
                row["started_at"] = at
            else:
                row["finished_at"] = at
                row["error"] = error

    def rows(self) -> list[dict[str, Any]]:
        """Every task, oldest first, with its state's name."""
        return [{**row, "state": TaskState(row["state"]).name} for row in self._tasks.values()]
