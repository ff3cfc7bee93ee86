"""Frames in flight (shared-memory rings) and at rest (HDF5).

Filled by the ring and recording issues.
"""

__all__: list[str] = []
