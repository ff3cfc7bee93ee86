"""Frames in flight (shared-memory rings) and, later, at rest (HDF5).

``FrameRing`` moves frames between processes without copying them: one
writer, any number of readers, a policy per reader. See ``_ring.py``.
"""

from rigd.storage._ring import (
    Frame,
    FrameRing,
    ReaderPolicy,
    ReaderStatistics,
    RingReader,
    RingStatistics,
    RingWriter,
    remove_stale_rings,
)

__all__ = [
    "Frame",
    "FrameRing",
    "ReaderPolicy",
    "ReaderStatistics",
    "RingReader",
    "RingStatistics",
    "RingWriter",
    "remove_stale_rings",
]
