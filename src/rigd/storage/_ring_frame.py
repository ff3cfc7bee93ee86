"""A frame a ring reader holds: a read-only view of its slot, and its stamps.

``RingReader`` (``_ring_reader``) makes one per frame it hands out; the
frame goes back to it on ``release`` (or on leaving ``with``).
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from rigd.storage._ring_reader import RingReader

__all__ = ["Frame"]


class Frame:
    """One frame a reader holds: a read-only view of its slot, and its stamps.

    Release it (``reader.release(frame)``, or use ``reader.read()``) when done:
    a lossless reader's slot is only reused after that.
    """

    __slots__ = (
        "_reader",
        "array",
        "frame_id",
        "seq",
        "slot",
        "timestamp_ns",
        "torn",
    )

    def __init__(
        self,
        reader: RingReader,
        array: np.ndarray[Any, Any],
        seq: int,
        slot: int,
        frame_id: int,
        timestamp_ns: int,
    ) -> None:
        self._reader = reader
        self.array = array
        self.seq = seq
        self.slot = slot
        self.frame_id = frame_id
        self.timestamp_ns = timestamp_ns
        #: Set by release: the writer overwrote the slot while it was held.
        self.torn = False

    # ``with reader.read() as frame`` (or ``reader.get()``): released on exit.
    def __enter__(self) -> Frame:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._reader._held is self:
            self._reader.release(self)

    def __repr__(self) -> str:
        return f"Frame(seq={self.seq}, frame_id={self.frame_id})"
