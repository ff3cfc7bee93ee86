"""Disk space held back for a run file, given back when the disk fills.

A run that fills its disk stops on ENOSPC with frames on the disk whose
records (ids, stamps) and HDF5 metadata are still to be written: without
room for those few kilobytes the file keeps only what its last timed flush
wrote. The writer holds ``RESERVE_BYTES`` in a hidden file beside the run
file (``.<name>.reserve``, allocated with ``posix_fallocate``) and deletes
it on the first write error, so the flush that keeps every written frame,
and the seal, have room. The reserve goes when the writer closes; a crash
leaves it for ``recover_run`` to remove. (The "ballast file" of database
and log servers, for the same reason.)
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

__all__ = ["RESERVE_BYTES", "SpaceReserve", "reserve_path"]

log = logging.getLogger(__name__)

#: Enough for the records of thousands of frames and a flush of HDF5's metadata.
RESERVE_BYTES = 1 << 20


def reserve_path(path: Path) -> Path:
    """The reserve beside run file ``path``: ``.<name>.reserve``."""
    return path.with_name(f".{path.name}.reserve")


class SpaceReserve:
    """``RESERVE_BYTES`` held beside ``path`` until ``release``."""

    def __init__(self, path: Path) -> None:
        self.path = reserve_path(path)
        self.held = False
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            log.warning("%s: no space reserved for a full disk (%s)", path, exc)
            return
        try:
            os.posix_fallocate(fd, 0, RESERVE_BYTES)
            self.held = True
        except OSError as exc:  # the disk is nearly full already: record without one
            log.warning("%s: no space reserved for a full disk (%s)", path, exc)
        finally:
            os.close(fd)
        if not self.held:
            self.release()

    def release(self) -> None:
        """Give the space back (idempotent)."""
        self.held = False
        with contextlib.suppress(OSError):
            self.path.unlink()
