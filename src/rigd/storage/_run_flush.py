"""A run file's flush: what becomes visible to SWMR readers, and when.

A flush publishes the datasets' extents (``frames`` grows chunk by chunk,
the per-frame records follow the frames they describe); it waits until
every raw chunk in the extent is on its way through the page cache, so a
reader never sees an unwritten frame. The housekeeper (``_housekeeping``)
flushes on a timer (``_timed_flush``: one that finds a raw chunk still with
the I/O thread returns False and is tried again soon); ``flush`` and
``close`` flush at once. ``RunWriter`` (``_run_writer``) has these methods
from here.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from rigd._exceptions import RecordingError
from rigd.storage._chunk_io import ChunkIO
from rigd.storage._stream_state import StreamState, TableRows

__all__ = ["RunFlush"]


class RunFlush:
    """The flush (a base of ``RunWriter``, which sets these)."""

    _lock: threading.Lock
    _failure: RecordingError | None
    _closed: bool
    _streams: dict[str, StreamState]
    _tables: dict[str, TableRows]
    _chunks: ChunkIO
    _file: Any
    _flushes: int
    _max_flush_s: float

    if TYPE_CHECKING:

        def _check_writable(self) -> None: ...

        def _fail(self, exc: BaseException) -> RecordingError: ...

    def flush(self) -> None:
        """Flush now: every frame written so far becomes visible and crash-safe."""
        with self._lock:
            self._check_writable()
            try:
                self._flush_locked(wait_pending=True)
            except Exception as exc:
                raise self._fail(exc) from exc

    def _flush_locked(self, wait_pending: bool) -> bool:
        """Flush; False (nothing flushed) when raw chunks are still being written.

        A raw chunk is in the extent from the moment the I/O thread is given
        it; HDF5 must not publish that extent before the bytes are there.
        """
        start = time.perf_counter()
        if not wait_pending:
            for state in self._streams.values():
                if state.codec is None and state.pending:
                    self._chunks.drain(state, wait=False)
                    if state.pending:
                        return False
        for state in self._streams.values():
            if state.pending:
                self._chunks.drain(state, wait=wait_pending)
            self._chunks.write_partial(state, wait_pending)
            state.flush_records()
        for table in self._tables.values():
            table.flush()
        self._file.flush()
        self._flushes += 1
        took = time.perf_counter() - start
        if took > self._max_flush_s:
            self._max_flush_s = took
        return True

    def _timed_flush(self) -> bool:
        """The housekeeper's flush; False: raw chunks still on their way, again soon."""
        with self._lock:
            if self._failure is None and not self._closed:
                try:
                    return self._flush_locked(wait_pending=False)
                except Exception as exc:  # noqa: BLE001 - any write error ends the run
                    self._fail(exc)
        return True
