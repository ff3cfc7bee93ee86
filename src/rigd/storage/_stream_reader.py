"""Reading one recorded stream frame by frame (``StreamReader``: what ``FilePlayback``
replays), and what planning needs to know of it (``describe_stream``).

Both work on a file still being recorded (opened live, in SWMR mode).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from rigd.storage import _nexus
from rigd.storage._h5file import (
    attr_str,
    chunk_offset,
    open_for_reading,
    raw_chunks,
    stream_groups,
)


class StreamReader:
    """One stream of a run file, frame by frame: what ``FilePlayback`` replays.

    ``kind`` is the stream's (``frames``, ``records``: frames of a structured
    dtype, or ``messages``: ``message(index)`` is each message's pickle, as
    the recorder stored it). Opens the file live (SWMR) when a writer still has it.
    """

    def __init__(self, path: str | os.PathLike[str], stream: str | None = None) -> None:
        """Raises:
        FileNotFoundError: no such file.
        ValueError: not a run file, or no such stream (the message lists them).
        """
        self._file = open_for_reading(path)
        try:
            group = _stream_group(self._file, path, stream)
            stream = group.name.lstrip("/")
            self.name = stream
            self._frames = group["frames"]
            self.frame_ids = group["frame_id"][:]
            self.timestamps_ns = group["timestamp_ns"][: len(self.frame_ids)]
            self.shape: tuple[int, ...] = tuple(self._frames.shape[1:])
            self.dtype = np.dtype(self._frames.dtype)
            self.kind = attr_str(group.attrs, "rigd_kind", "frames")
            #: The columns a stream of 1-D frames was recorded with (``FrameStats``'
            #: mean, min, max), with their units; () for images and records.
            self.fields = _nexus.field_names(group) if self.kind == "frames" else ()
            self._messages = group.get("message_bytes")
            # Raw frames are read as RunWriter writes them: at their chunk's
            # offset, one pread each (h5py's read_direct builds a selection per
            # call: about 4x the time of a 256x256 uint16 frame's read).
            self._raw = raw_chunks(self._frames) if self._messages is None else None
            self._chunks: dict[int, int] = {}  # chunk index -> its offset in the file
            self._frame_bytes = self.dtype.itemsize * int(np.prod(self.shape, dtype=np.int64))
        except BaseException:
            self._file.close()
            raise

    def __len__(self) -> int:
        return len(self.frame_ids)

    def read_into(self, index: int, out: np.ndarray[Any, Any]) -> None:
        """Read frame ``index`` straight into ``out`` (a ring slot): no extra copy.

        ``out`` is an array of the stream's shape; of its dtype (byte order
        included), C-contiguous and writable, a raw frame is read from the
        file with one ``pread``; else HDF5 reads it (``read_direct``:
        decompressing, converting its dtype).

        Raises:
            IndexError, ValueError, OSError: as h5py's ``read_direct`` (no
                such frame, ``out`` of another shape, a file cut short).
        """
        raw = self._raw
        if (
            raw is not None
            and 0 <= index < len(self.frame_ids)
            and out.dtype == self.dtype
            and out.shape == self.shape
            and out.flags.c_contiguous
            and out.flags.writeable
        ):
            fd, k = raw
            chunk = index // k
            offset = self._chunks.get(chunk)
            if offset is None:
                offset = chunk_offset(self._frames, chunk * k)
                if offset is not None:
                    self._chunks[chunk] = offset
            if offset is not None:
                start = offset + (index - chunk * k) * self._frame_bytes
                if os.preadv(fd, [out.data.cast("B")], start) == self._frame_bytes:
                    return
        self._frames.read_direct(out, source_sel=np.s_[index])

    def message(self, index: int) -> bytes:
        """Message ``index`` of a messages stream: its pickle (``pickle.loads`` reads it).

        Raises:
            ValueError: not a messages stream.
        """
        if self._messages is None:
            raise ValueError(f"stream {self.name!r} holds {self.kind}, not messages")
        start, stop = (int(n) for n in self._frames[index])
        return bytes(self._messages[start:stop])

    def longest_message(self) -> int:
        """The bytes of the longest message of a messages stream (0: none, or not messages)."""
        if self._messages is None or not len(self):
            return 0
        spans = self._frames[: len(self)]
        return int((spans[:, 1] - spans[:, 0]).max())

    def close(self) -> None:
        self._raw = None  # its descriptor goes with the file (and its number may be reused)
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True, slots=True)
class StreamDescription:
    """What planning needs of one recorded stream (``describe_stream``).

    Attributes:
        name: the stream's name.
        shape: one frame's shape; dtype: its numpy dtype.
        kind: ``frames``, ``records`` or ``messages`` (``StreamReader.kind``).
        fields: the named columns of a stream of 1-D frames (``StreamReader.fields``).
        longest_message: bytes of its longest message (0: none, or not messages).
    """

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    kind: str
    fields: tuple[Any, ...]
    longest_message: int


def describe_stream(path: str | os.PathLike[str], stream: str | None = None) -> StreamDescription:
    """Describe one stream of a run file, as ``StreamReader`` would find it.

    A pipeline's planning asks this several times of the same file (the
    playback's shapes, fields, kind): the answer is kept while the file
    itself is unchanged (the same inode, size and mtime), so a file still
    being recorded is read again once it has grown.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a run file, or no such stream (the message lists them).
    """
    try:
        st = os.stat(path)
    except OSError:
        return _describe.__wrapped__(path, stream, ())  # StreamReader says what is wrong
    stamp = (os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    return _describe(os.fspath(path), stream, stamp)


@functools.lru_cache(maxsize=16)
def _describe(
    path: str | os.PathLike[str], stream: str | None, stamp: tuple[Any, ...]
) -> StreamDescription:
    """``describe_stream``; ``stamp`` (the file's identity and mtime) is the cache's key only."""
    with StreamReader(path, stream) as reader:
        return StreamDescription(
            reader.name,
            reader.shape,
            reader.dtype,
            reader.kind,
            tuple(reader.fields),
            reader.longest_message(),
        )


def _stream_group(f: Any, path: str | os.PathLike[str], stream: str | None) -> Any:
    """The group of stream ``stream`` in the open run file ``f`` (the only one if None).

    Raises:
        ValueError: no stream, several and none named, or no such stream.
    """
    groups = {g.name.lstrip("/"): g for g in stream_groups(f)}
    if not groups:
        raise ValueError(f"{path} holds no recorded stream")
    if stream is None:
        if len(groups) > 1:
            raise ValueError(f"{path} holds streams {sorted(groups)}; name the one to play")
        stream = next(iter(groups))
    if stream not in groups:
        raise ValueError(f"{path} has no stream {stream!r}; it has {sorted(groups)}")
    return groups[stream]
