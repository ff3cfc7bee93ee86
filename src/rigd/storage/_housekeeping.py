"""A run writer's housekeeping thread: flush, fsync and writeback on timers.

It flushes every ``flush_interval`` (so SWMR readers see new frames) and
fsyncs every ``fsync_interval``; fsync runs on a duplicate descriptor,
outside HDF5's lock, so it never holds up ``write``. Every 0.1 s it starts
the kernel writing dirty pages out, so an fsync finds little left: a long
fsync holds the filesystem's journal, and ``write`` waits on the journal
(ext4: 100+ ms stalls). A run's first frame is flushed at once
(``flush_soon``): a run is visible to readers from its first frame, not a
flush interval later.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from rigd.storage._chunk_io import start_writeback

# How often the writer starts the kernel writing dirty pages out.
_WRITEBACK_S = 0.1
# A flush that finds raw chunks still on their way to the disk waits this long
# and tries again, so the extent readers see never covers an unwritten chunk.
_FLUSH_RETRY_S = 0.01


class Housekeeper:
    """The thread, its timers and its fsync counters.

    Args:
        fd: the descriptor to fsync and write back (a duplicate of HDF5's).
        flush: flushes the file; returns False to be called again in 10 ms
            (raw chunks still on their way). It handles its own errors.
        fsync_failed: told of an fsync error; the thread then ends.
    """

    def __init__(
        self,
        fd: int,
        flush_interval: float,
        fsync_interval: float,
        flush: Callable[[], bool],
        fsync_failed: Callable[[OSError], None],
        name: str,
    ) -> None:
        self._fd = fd
        self._flush_interval = flush_interval
        self._fsync_interval = fsync_interval
        self._flush = flush
        self._fsync_failed = fsync_failed
        self.fsyncs = 0
        self.max_fsync_s = 0.0
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._flush_soon = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def flush_soon(self) -> None:
        """Flush now rather than at the next interval."""
        self._flush_soon = True
        self._wake.set()

    def stop(self) -> None:
        """End the thread and wait for it."""
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        now = time.monotonic()
        next_flush = now + self._flush_interval
        next_fsync = now + self._fsync_interval
        next_writeback = now + _WRITEBACK_S
        while True:
            self._wake.wait(
                max(0.0, min(next_flush, next_fsync, next_writeback) - time.monotonic())
            )
            self._wake.clear()
            if self._stop.is_set():
                return
            now = time.monotonic()
            if self._flush_soon:
                self._flush_soon = False
                next_flush = now
            if now >= next_writeback:
                next_writeback = now + _WRITEBACK_S
                start_writeback(self._fd)
            if now >= next_flush:
                next_flush = now + self._flush_interval
                if not self._flush():
                    next_flush = now + _FLUSH_RETRY_S
            if now >= next_fsync:
                next_fsync = now + self._fsync_interval
                start = time.perf_counter()
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    self._fsync_failed(exc)
                    return
                self.fsyncs += 1
                self.max_fsync_s = max(self.max_fsync_s, time.perf_counter() - start)
