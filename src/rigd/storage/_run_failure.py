"""A run file's write error: the recording stops, the file keeps what it holds.

The first error a write, flush or fsync meets (a full disk, a failing one)
becomes the writer's ``RecordingError`` (``_fail``): every later call raises
it; the space reserve is released and the records of every frame whose
bytes reached the file go in (``_keep_written``), and at close the file is
made openable (``_salvage``, ``recover_run``). ``RunWriter``
(``_run_writer``) has these methods from here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

from rigd._exceptions import RecordingError
from rigd.storage._reserve import SpaceReserve
from rigd.storage._run_recover import recover_run
from rigd.storage._stream_state import StreamState

__all__ = ["RunFailure"]

log = logging.getLogger("rigd.storage._run_writer")


class RunFailure:
    """The write-error path (a base of ``RunWriter``, which sets these)."""

    path: Path
    _lock: threading.Lock
    _failure: RecordingError | None
    _closed: bool
    _streams: dict[str, StreamState]
    _reserve: SpaceReserve
    _file: Any

    def _check_writable(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._closed:
            raise RecordingError(f"the recording to {self.path} was closed", str(self.path))

    def _fail(self, exc: BaseException) -> RecordingError:
        if self._failure is None:
            counts = {name: s.written for name, s in self._streams.items()}
            # HDF5's messages run over several lines; the errno says it best.
            detail = " ".join(str(exc).split())
            errno = getattr(exc, "errno", None)
            reason = detail
            if errno:
                # OSError's own text is "[Errno 28] No space left on device": said once.
                words = os.strerror(errno)
                plain = detail in (words, f"[Errno {errno}] {words}")
                reason = words if plain else f"{words} ({detail})"
            self._failure = RecordingError(
                f"recording to {self.path} stopped: {reason}. The file keeps every frame "
                f"written before the error ({counts}); free space or fix the disk, then "
                "start a new run",
                str(self.path),
                counts,
            )
            log.error("%s", self._failure)
            # Now, not at close: a recorder that fails may never close. The
            # reserve gives the records and HDF5's metadata room.
            self._reserve.release()
            self._keep_written()
        return self._failure

    def _fsync_failed(self, exc: OSError) -> None:
        with self._lock:
            self._fail(exc)

    def _keep_written(self) -> None:
        """After a write error (a full disk): put the records of every frame
        whose bytes reached the file in the file too, so it keeps them all,
        not only those of the last timed flush.

        The records go into chunks the file already has (one chunk holds
        thousands), so this needs no new space on a full disk; if HDF5
        fails anyway, the file keeps what the last flush wrote.
        """
        for state in self._streams.values():
            try:
                state.flush_records()
            except Exception as exc:  # noqa: BLE001 - keep what the last flush wrote
                log.warning("%s: the last records of %s: %s", self.path, state.spec.name, exc)
        with contextlib.suppress(Exception):
            self._file.flush()

    def _salvage(self) -> None:
        """After a write error: make the file openable by any HDF5 reader."""
        try:
            recover_run(self.path)
        except Exception as exc:  # noqa: BLE001 - the disk may still be full: say so
            log.error(
                "%s could not be sealed after the error (%s); run `rigd recover %s` "
                "once the disk has space",
                self.path,
                exc,
                self.path,
            )
