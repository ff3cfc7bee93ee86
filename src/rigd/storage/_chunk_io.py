"""A stream's frames on their way to the file, in chunks, outside HDF5's lock.

Raw frames never go through HDF5's write path: their chunks get file space
as the dataset grows (early allocation, no fill), one chunk at a time just
before their bytes are written, and their bytes are written with ``pwrite``
at the chunk's offset, which lets go of the GIL (h5py holds it through
every HDF5 call, a 17 ms disk write included), with ``O_DIRECT`` where the
file system takes it (``_direct_io``: no copy into the page cache). ``accept`` copies a frame
into a pooled chunk buffer and the I/O thread writes it, or, with
``write_buffers=0``, writes the caller's frame itself with no copy.
Compressed chunks are compressed by a thread pool (``_codecs``) and written
in order with direct chunk writes.

``ChunkIO`` owns the I/O thread, the compression pool and the file
descriptor they write through; the writer calls it under its lock.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from rigd.storage._direct_io import ChunkWriter, pwrite_all
from rigd.storage._stream_state import StreamState

__all__ = ["ChunkIO", "pwrite_all", "start_writeback"]


class ChunkIO:
    """Chunks of every stream of one file: staged, compressed, written, in order."""

    def __init__(
        self,
        fd: int,
        streams: Iterable[StreamState],
        write_buffers: int,
        compression_threads: int | None,
        chunk_writer: ChunkWriter | None = None,
    ) -> None:
        self.fd = fd
        #: Raw chunks' bytes go through this (O_DIRECT where it can).
        self.raw = chunk_writer or ChunkWriter("", fd, direct=False)
        self.write_buffers = write_buffers
        #: Bytes written to the file so far (compressed bytes for compressed chunks).
        self.bytes_written = 0
        streams = list(streams)
        # One I/O thread: raw chunks reach the file in order.
        self._io = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="rigd-write")
            if write_buffers and any(s.codec is None for s in streams)
            else None
        )
        self._threads = compression_threads or min(4, os.cpu_count() or 1)
        self._pool = (
            ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="rigd-compress")
            if any(s.codec for s in streams)
            else None
        )

    def accept(self, state: StreamState, frame: np.ndarray[Any, Any], index: int) -> None:
        """Take frame ``index`` of ``state``'s stream on its way to the file."""
        k = state.k
        if k == 1:
            if state.codec is None:
                state.grow(index + 1)
                self.write_raw(state, index, 1, frame, owned=False)
            else:
                self.submit(state, index, 1, np.array(frame, copy=True))
        else:
            if state.staging is None:
                state.staging = state.new_chunk()
            state.staging[index % k] = frame
            if index % k == k - 1:
                chunk, state.staging = state.staging, None
                self.emit_chunk(state, index // k, k, chunk, owned=True)
        if state.pending:
            self.drain(state, wait=False)

    def emit_chunk(
        self, state: StreamState, chunk_index: int, count: int, chunk: Any, owned: bool
    ) -> None:
        """Write (or hand on) chunk ``chunk_index`` holding ``count`` frames.

        ``owned``: the writer may keep ``chunk`` (a staging buffer it filled).
        """
        first = chunk_index * state.k
        if state.codec is None:
            state.grow(first + count)
            self.write_raw(state, first, count, chunk, owned)
        else:
            self.submit(state, first, count, chunk if owned else chunk.copy())

    def write_raw(
        self, state: StreamState, first: int, count: int, data: np.ndarray[Any, Any], owned: bool
    ) -> None:
        """Put a raw chunk's bytes at its place in the file."""
        offset = state.offsets[first // state.k]
        nbytes = count * state.spec.frame_bytes
        if offset is None:  # a chunk HDF5 did not allocate up front (an older file)
            state.frames.id.write_direct_chunk((first, *(0,) * len(state.spec.shape)), data)
            self._written(state, first + count - state.written, nbytes)
            return
        if self._io is None:
            # The caller's own buffer, no copy; pwrite lets go of the GIL.
            self.raw.write(data, offset)
            self._written(state, first + count - state.written, nbytes)
            return
        # Bounded: when every buffer waits for the disk, the caller waits too.
        while len(state.pending) >= self.write_buffers:
            self.drain(state, wait=True, one=True)
        if owned and data.shape[0] == state.k:
            buffer = data
        else:
            buffer = state.new_chunk()
            np.copyto(buffer.reshape(data.shape), data)
        future = self._io.submit(self.raw.write, buffer, offset)
        state.pending.append((first, count, future, buffer))

    def submit(self, state: StreamState, first: int, count: int, chunk: Any) -> None:
        """Hand a chunk to the compression pool."""
        assert self._pool is not None
        assert state.codec is not None
        # Bound the chunks in flight: when compression cannot keep up, the
        # caller waits here (back-pressure) rather than memory growing.
        limit = 2 * (self._threads + 1)
        while len(state.pending) >= limit:
            self.drain(state, wait=True, one=True)
        state.pending.append((first, count, self._pool.submit(state.codec.compress, chunk), None))

    def drain(self, state: StreamState, wait: bool, one: bool = False) -> None:
        """Take finished chunks off the front of the queue, in order."""
        while state.pending:
            first, count, future, buffer = state.pending[0]
            if not wait and not future.done():
                return
            result = future.result()  # a failed write raises here
            state.pending.popleft()
            if state.codec is not None:
                offset = (first, *(0,) * len(state.spec.shape))
                state.grow(first + count)
                state.frames.id.write_direct_chunk(offset, result)
                nbytes = len(result)
            else:
                nbytes = count * state.spec.frame_bytes
                if buffer is not None and len(state.spare) < self.write_buffers:
                    state.spare.append(buffer)
            self._written(state, first + count - state.written, nbytes)
            if one:
                return

    def write_partial(self, state: StreamState, wait_pending: bool) -> None:
        """Write the partial chunk of small frames now (before a flush); it is
        written again when it fills."""
        count = state.received % state.k
        if (
            state.staging is not None
            and count
            and not state.pending
            and state.written < state.received
        ):
            self.emit_chunk(state, state.received // state.k, count, state.staging, False)
            if wait_pending or state.codec is None:
                # A raw partial chunk is in the extent: its bytes first.
                self.drain(state, wait=True)

    def _written(self, state: StreamState, frames: int, nbytes: int) -> None:
        self.bytes_written += nbytes
        if frames > 0:  # else a partial chunk rewritten: its frames were counted
            state.mark_written(frames)

    def shutdown(self) -> None:
        """Stop the threads; chunks not yet written are dropped."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
        if self._io is not None:
            self._io.shutdown(wait=True, cancel_futures=True)
        self.raw.close_direct()


def _load_sync_file_range() -> Any:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.sync_file_range
    except (OSError, AttributeError):  # not Linux: fsync alone will do
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_sync_file_range = _load_sync_file_range()
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int) -> None:
    """Ask the kernel to start writing the file's dirty pages, without waiting."""
    if _sync_file_range is not None:
        _sync_file_range(fd, 0, 0, _SYNC_FILE_RANGE_WRITE)
