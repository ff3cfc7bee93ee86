"""RunWriter: one run recorded to one HDF5 file, readable while written, crash-safe.

How it stays fast and safe:

- Every object exists before the first frame (``_h5file``), then the file
  switches to SWMR: readers (h5py with ``swmr=True``, ``rigd inspect``)
  follow the run live, and what is on disk is consistent after every flush.
- Frames reach the file in chunks outside HDF5's lock (``_chunk_io``).
- A reader never sees an unwritten frame: ``frames`` grows chunk by chunk
  as frames are written, and HDF5 publishes its extent only at a flush,
  which waits until every chunk in the extent is on its way through the
  page cache (a flush that finds one still with the I/O thread tries again
  10 ms later). ``len(frame_id)`` is the documented count: the frames whose
  records are in the file (the per-frame records reach the file at each
  flush, after the frames they describe); ``frames`` is at least that long
  and holds only written frames, so ``f["cam/frames"][-1]`` is a real frame.
- Every file is also a NeXus file (``_nexus``): ``/entry`` links to the
  same datasets, with units and ``default`` down to the image.
- A housekeeping thread flushes and fsyncs on timers (``_housekeeping``).
- Closing seals the file; a file a crash left ``recording`` is repaired by
  ``recover_run`` (``_run_recover``). Until it is sealed the writer holds
  the file's writer lock (``_writer_lock``), which its process's death
  releases: ``recover_run`` refuses a file whose writer is alive.

This module is the writer's public surface (create, resume, write, note
drops, flush, close) and the lock that orders them; each of the parts it
drives lives in its own module: the checks of a new run (``_run_args``),
the flush (``_run_flush``), tables of rows (``_run_tables``), a write
error (``_run_failure``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from rigd._exceptions import RecordingError
from rigd.storage._chunk_io import ChunkIO
from rigd.storage._direct_io import ChunkWriter
from rigd.storage._h5file import attr_str, create_file, open_file
from rigd.storage._housekeeping import Housekeeper
from rigd.storage._reserve import SpaceReserve
from rigd.storage._run_args import check_new_run
from rigd.storage._run_failure import RunFailure
from rigd.storage._run_file import lay_out_run, reopen_run
from rigd.storage._run_flush import RunFlush
from rigd.storage._run_layout import DropReason, RecorderStatistics, StreamSpec
from rigd.storage._run_recover import recover_run, seal_run
from rigd.storage._run_tables import RunTables
from rigd.storage._stream_state import StreamState, TableRows
from rigd.storage._writer_lock import WriterLock

log = logging.getLogger(__name__)


class RunWriter(RunFlush, RunTables, RunFailure):
    """Writes one run to one HDF5 file; see the module docstring.

    ``write`` is meant for one thread (the recorder's loop); the writer's own
    threads flush, fsync and compress beside it.
    """

    _streams: dict[str, StreamState]
    _tables: dict[str, TableRows]

    def __init__(
        self,
        path: str | os.PathLike[str],
        streams: Sequence[StreamSpec],
        *,
        run_id: str,
        pipeline: str = "",
        metadata: Mapping[str, Any] | None = None,
        flush_interval: float = 0.5,
        fsync_interval: float = 1.0,
        compression_threads: int | None = None,
        write_buffers: int = 8,
        tables: Mapping[str, Any] | None = None,
        direct_io: bool = True,
    ) -> None:
        """Create the file (never overwriting one) and start recording.

        Args:
            write_buffers: raw chunks that may wait for the disk. ``write``
                copies a frame into one and returns; the I/O thread writes
                it (so a slow disk stalls the caller only once they are all
                full). 0: ``write`` writes the caller's frame itself, with no
                copy, and returns once it is in the file (a recorder fed by
                a ring, whose slots are the buffer, wants this).
            tables: root datasets of rows, by name and (compound) numpy
                dtype, written with ``append_row`` / ``update_row`` and
                visible to SWMR readers at each flush.
            direct_io: write raw chunks with ``O_DIRECT`` where the file
                system takes it (``_direct_io``: no copy into the page
                cache, ~1 ms of CPU per 8 MiB instead of 8-25 ms); False:
                always through the page cache.

        Raises:
            FileExistsError: a file is already at ``path``.
            ValueError: bad streams, metadata or intervals (nothing is created).
        """
        self.path = Path(path)
        checked, codecs, tables = check_new_run(
            self.path, streams, tables, metadata, flush_interval, fsync_interval, write_buffers
        )
        self._init_state(run_id, flush_interval, fsync_interval, write_buffers, direct_io)
        # 'x': fail if the file appeared since the check above.
        self._file = create_file(self.path)
        try:
            self._writer_lock = WriterLock(self.path, required=False)
            self._streams, self._tables = lay_out_run(
                self._file,
                self.path.name,
                streams,
                codecs,
                tables,
                run_id=run_id,
                pipeline=pipeline,
                metadata=checked,
            )
            self._start_swmr()
        except BaseException:
            self._file.close()
            self._release_writer_lock()
            self.path.unlink(missing_ok=True)
            raise
        self._start_threads(compression_threads)

    @classmethod
    def resume(
        cls,
        path: str | os.PathLike[str],
        *,
        reason: str = DropReason.RESTART,
        flush_interval: float = 0.5,
        fsync_interval: float = 1.0,
        compression_threads: int | None = None,
        write_buffers: int = 8,
        direct_io: bool = True,
    ) -> RunWriter:
        """Record on into a run file whose recorder crashed (a restarted recorder).

        Repairs the file first (``recover_run``), then appends after the
        frames it holds. The frames the crash lost, and those that come
        before the new recorder's first frame, go in the drop ledger with
        ``reason``.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a rigd run file.
        """
        recover_run(path)
        self = cls.__new__(cls)
        self.path = Path(path)
        self._writer_lock = WriterLock(self.path, required=False)
        try:
            self._file = open_file(self.path, "r+", run_format=True)
        except BaseException:
            self._release_writer_lock()
            raise
        try:
            attrs = self._file.attrs
            self._init_state(
                attr_str(attrs, "run_id"),
                flush_interval,
                fsync_interval,
                write_buffers,
                direct_io,
            )
            self._streams, self._tables = reopen_run(self._file, reason)
            self._start_swmr()
        except BaseException:
            self._file.close()
            self._release_writer_lock()
            raise
        log.warning("%s: recording resumed after a restart (%s)", self.path, reason)
        self._start_threads(compression_threads)
        return self

    def _init_state(
        self,
        run_id: str,
        flush_interval: float,
        fsync_interval: float,
        write_buffers: int,
        direct_io: bool,
    ) -> None:
        self.run_id = run_id
        self.direct_io = direct_io
        self.write_buffers = write_buffers
        self.flush_interval = flush_interval
        self.fsync_interval = fsync_interval
        self._lock = threading.Lock()
        self._failure: RecordingError | None = None
        self._closed = False
        self._flushes = 0
        self._max_write_s = 0.0
        self._max_flush_s = 0.0
        self._streams = {}
        self._tables = {}

    def _start_swmr(self) -> None:
        self._file.swmr_mode = True
        self._file.flush()
        self._fd = os.dup(self._file.id.get_vfd_handle())
        self._reserve = SpaceReserve(self.path)

    def _start_threads(self, compression_threads: int | None) -> None:
        self._chunks = ChunkIO(
            self._fd,
            self._streams.values(),
            self.write_buffers,
            compression_threads,
            ChunkWriter(self.path, self._fd, direct=self.direct_io),
        )
        self._first_flushed = False
        self._keeper = Housekeeper(
            self._fd,
            self.flush_interval,
            self.fsync_interval,
            flush=self._timed_flush,
            fsync_failed=self._fsync_failed,
            name=f"rigd-recorder-{self.run_id}",
        )

    # -- the caller's side ------------------------------------------------------

    def write(
        self, stream: str, frame: np.ndarray[Any, Any], frame_id: int, timestamp_ns: int
    ) -> None:
        """Record one frame. It may be a read-only view (a ring slot): when
        this returns, the writer no longer needs it.

        A frame id that skips ahead puts the skipped ids in the drop ledger
        (reason ``gap``) unless ``note_dropped`` already accounted for them.

        Raises:
            ValueError: the frame's shape or dtype is not the stream's, or
                ``frame_id`` is not above the stream's last recorded id, or is
                already in its drop ledger (each id is recorded or dropped,
                once). Nothing changes: the frames recorded so far stay, and
                the recording goes on.
            KeyError: no such stream.
            RecordingError: the recording stopped on a write error.
        """
        start = time.perf_counter()
        state = self._stream(stream)
        spec = state.spec
        if frame.shape != spec.shape or frame.dtype != spec.dtype:
            raise ValueError(
                f"stream {stream!r} records {spec.shape} {spec.dtype} frames; "
                f"got {frame.shape} {frame.dtype}"
            )
        with self._lock:
            self._check_writable()
            state.check_id(int(frame_id))
            try:
                self._accept(state, frame, int(frame_id), int(timestamp_ns))
            except Exception as exc:
                raise self._fail(exc) from exc
        took = time.perf_counter() - start
        if took > self._max_write_s:
            self._max_write_s = took

    def write_message(self, stream: str, data: Any, frame_id: int, timestamp_ns: int) -> None:
        """Record one message of a messages stream: ``data`` is its bytes
        (a pickle, as ``pickle.dumps`` makes it), stored as they are.

        Raises:
            ValueError: ``stream`` is not a messages stream, ``data`` is empty,
                or ``frame_id`` is not above the last one or already in the
                drop ledger (as ``write``; nothing changes).
            KeyError: no such stream.
            RecordingError: the recording stopped on a write error.
        """
        state = self._stream(stream)
        if state.message_bytes is None:
            raise ValueError(f"stream {stream!r} records {state.spec.kind}, not messages")
        payload = np.frombuffer(data, np.uint8)
        if not payload.size:
            raise ValueError(f"stream {stream!r}: a message has at least one byte")
        with self._lock:
            self._check_writable()
            state.check_id(int(frame_id))
            try:
                start = state.message_size
                stop = start + payload.size
                state.message_bytes.resize((stop,))
                state.message_bytes[start:stop] = payload
                state.message_size = stop
                span = np.array([start, stop], np.uint64)
                self._accept(state, span, int(frame_id), int(timestamp_ns))
            except Exception as exc:
                raise self._fail(exc) from exc

    def note_dropped(self, stream: str, first_id: int, count: int, reason: str) -> None:
        """Put frames the recorder never got in the drop ledger.

        ``count`` may be 0 to log an event (a restart) with no frames lost.
        Ids already recorded or already in the ledger are left out (a source's
        drop note and the recorder's own ``disk_behind`` run may name the same
        ids): every id is in the file or in the ledger, once.
        """
        state = self._stream(stream)
        if count < 0:
            raise ValueError(f"count must be >= 0, got {count}")
        with self._lock:
            self._check_writable()
            state.note_dropped(int(first_id), int(count), str(reason))

    def expect_gap(self, stream: str) -> None:
        """The next frame of ``stream`` may skip ids on purpose (a triggered
        recorder's next event): the skip is not a drop."""
        state = self._stream(stream)
        with self._lock:
            state.next_id = None

    def fileno(self) -> int:
        """The descriptor of the run file as HDF5 opened it (to ``fstat`` the very
        file written; closed by ``close``)."""
        return self._fd

    def statistics(self) -> RecorderStatistics:
        with self._lock:
            streams = self._streams.values()
            return RecorderStatistics(
                frames_written={s.spec.name: s.written for s in streams},
                frames_dropped={s.spec.name: s.dropped_total for s in streams},
                bytes_written=self._chunks.bytes_written,
                flushes=self._flushes,
                fsyncs=self._keeper.fsyncs,
                max_write_s=self._max_write_s,
                max_flush_s=self._max_flush_s,
                max_fsync_s=self._keeper.max_fsync_s,
                direct_bytes=self._chunks.raw.direct_bytes,
            )

    @property
    def failed(self) -> RecordingError | None:
        """The error that stopped the recording, if one did."""
        return self._failure

    def close(self, *, failure: str | None = None) -> None:
        """Write what is left, seal the file (``run_state = "complete"``), close.

        ``failure``: the run failed (its text, e.g. an actor that gave up):
        the file is sealed ``run_state = "failed"`` with a ``failure``
        attribute instead, in the one sealing (``seal_run``).

        After a write error, closes what it can and leaves the file readable
        with every frame written before the error (``run_state`` stays
        ``recording`` until ``recover_run`` marks it); raises the error again.
        """
        if self._closed:
            if self._failure is not None:
                raise self._failure
            return
        self._closed = True
        self._keeper.stop()
        error: BaseException | None = self._failure
        with self._lock:
            if error is None:
                try:
                    self._flush_locked(wait_pending=True)
                except Exception as exc:  # noqa: BLE001 - any write error ends the run
                    error = self._fail(exc)
            counts = {name: s.written for name, s in self._streams.items()}
            dropped = {name: s.dropped_total for name, s in self._streams.items()}
            with contextlib.suppress(Exception):
                # After a write error HDF5 may fail here too; the flushed state
                # on disk stays readable either way.
                self._file.close()
            self._chunks.shutdown()
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._reserve.release()
        if error is not None:
            self._release_writer_lock()  # recover_run takes it
            self._salvage()
            raise error
        try:
            seal_run(self.path, counts, dropped, failure)
        finally:
            self._release_writer_lock()

    def _release_writer_lock(self) -> None:
        """Let go of the file: ``rigd recover`` may repair it from now on."""
        lock = getattr(self, "_writer_lock", None)
        if lock is not None:
            lock.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- inside ---------------------------------------------------------------------

    def _stream(self, name: str) -> StreamState:
        try:
            return self._streams[name]
        except KeyError:
            raise KeyError(
                f"no stream {name!r} in {self.path.name}; streams: {sorted(self._streams)}"
            ) from None

    def _accept(
        self, state: StreamState, frame: np.ndarray[Any, Any], frame_id: int, ts: int
    ) -> None:
        state.accept_id(frame_id)
        index = state.received
        state.received += 1
        state.ids.append(frame_id)
        state.stamps.append(ts)
        if state.columns:
            state.rows.append(np.array(frame, copy=True))
        self._chunks.accept(state, frame, index)
        if not self._first_flushed:
            self._first_flushed = True
            self._keeper.flush_soon()
