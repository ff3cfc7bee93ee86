"""A triggered recording's records: triggers, events, each event's window of
frames per stream, and the ``events`` table's rows.

The ``events`` table holds one row per event, written when the event starts
and updated as it fills (so a SWMR reader follows events live): the
trigger's time, frame id, source and label, how many triggers merged into
it, whether it completed, and per recorded stream the first row and the row
count of its frames.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "IDLE_S",
    "LABEL_BYTES",
    "SOURCE_BYTES",
    "Event",
    "Trigger",
    "Window",
    "clip",
    "event_table_dtype",
]

#: The longest a recording loop waits for something to do, in seconds.
IDLE_S = 0.05
#: The ``label`` and ``source`` columns' widths, in bytes (UTF-8).
LABEL_BYTES = 64
SOURCE_BYTES = 32


@dataclass
class Trigger:
    """One trigger: when (ns since the epoch), the frame id (-1 for a soft or
    scheduled one), where from (``soft``, ``schedule`` or an input's name)."""

    time_ns: int
    frame_id: int
    source: str
    label: str = ""


@dataclass
class Window:
    """One event's frames of one stream: sequence numbers in its ring."""

    start: int  # the first frame's sequence number
    end: int | None = None  # one past the last (frames), once known
    end_ns: int | None = None  # or: up to this acquisition time (seconds)
    next: int = 0  # the next to write
    first_row: int = -1
    rows: int = 0
    done: bool = False
    short: bool = False  # frames of the window were lost (the ledger says how many)
    trigger_seq: int = -1  # the trigger's frame: the first at or after its time
    trigger_id: int = -1  # that frame's id, once written


@dataclass
class Event:
    """One event: its row in the ``events`` table, its (first) trigger, and a
    window per recorded stream."""

    row: int
    trigger: Trigger
    windows: dict[str, Window]
    merged: int = 1
    complete: bool = True
    last_progress: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> bool:
        return all(w.done for w in self.windows.values())


def clip(text: str, size: int) -> bytes:
    """``text`` as UTF-8 in at most ``size`` bytes, never cutting a character."""
    return text.encode()[:size].decode("utf-8", "ignore").encode()


def event_table_dtype(streams: Iterable[str]) -> np.dtype[Any]:
    """The ``events`` table's row: the trigger's columns, then the first row
    and row count of each recorded stream's frames."""
    columns: list[tuple[str, Any]] = [
        ("trigger_ns", "<i8"),
        ("trigger_frame_id", "<i8"),
        ("source", f"S{SOURCE_BYTES}"),
        ("label", f"S{LABEL_BYTES}"),
        ("merged", "<i4"),
        ("complete", "u1"),
    ]
    for name in streams:
        columns += [(f"{name}_first_row", "<i8"), (f"{name}_rows", "<i8")]
    return np.dtype(columns)
