"""Reading run files: a stream frame by frame, a run's summary, its NWB export.

All of it works on a file still being recorded (opened live, in SWMR
mode), except the NWB export, which wants a sealed run.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np

from rigd.storage import _nexus
from rigd.storage._h5file import (
    attr_str,
    chunk_offset,
    open_file,
    open_file_object,
    open_for_reading,
    raw_chunks,
    relink_external,
    stream_groups,
)
from rigd.storage._repair_view import RepairedView
from rigd.storage._run_layout import RunSummary, StreamSummary
from rigd.storage._run_metadata import RESERVED_ATTRIBUTES
from rigd.storage._superblock import read_superblock, truncated_message
from rigd.storage._writer_lock import writer_alive

log = logging.getLogger(__name__)


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


def inspect_run(path: str | os.PathLike[str]) -> RunSummary:
    """Summarise a run file: streams, frames, rate, drops, state, metadata.

    Works on a file still being recorded (it reads it live, in SWMR mode),
    and on one its writer left unsealed (``RunSummary.writer_gone``; one
    left short of its recorded end is read as ``recover_run`` would see it,
    ``_repair_view``). Writes nothing.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not HDF5, not a rigd run file, or truncated
            (the message says so).
    """
    block = read_superblock(path)
    live = writer_alive(path)
    size = os.stat(path).st_size
    if not live and size < block.end_of_file:
        with RepairedView(path, block) as view:
            try:
                with open_file_object(view) as f:
                    return _summarise(f, path, writer_gone=block.open_for_write)
            except ValueError:
                raise
            except Exception:  # noqa: BLE001 - HDF5 met the missing metadata
                raise ValueError(truncated_message(path, size, block.end_of_file)) from None
    with open_for_reading(path) as f:
        return _summarise(f, path, writer_gone=block.open_for_write and not live)


def _summarise(f: Any, path: str | os.PathLike[str], *, writer_gone: bool) -> RunSummary:
    """``inspect_run`` of the open file ``f``."""
    if "run_id" not in f.attrs:
        raise ValueError(f"{path} is an HDF5 file but not a rigd run (no run_id attribute)")
    streams = tuple(_summarise_stream(g) for g in stream_groups(f))
    metadata = {
        k: (v.tolist() if isinstance(v, np.ndarray) else v)
        for k, v in f.attrs.items()
        if k not in RESERVED_ATTRIBUTES
    }
    attrs = f.attrs
    return RunSummary(
        path=os.fspath(path),
        run_id=attr_str(attrs, "run_id"),
        run_state=attr_str(attrs, "run_state", "unknown"),
        start_time=attr_str(attrs, "start_time"),
        stop_time=attr_str(attrs, "stop_time"),
        host=attr_str(attrs, "host"),
        rigd_version=attr_str(attrs, "rigd_version"),
        streams=streams,
        metadata=metadata,
        pipeline=attr_str(attrs, "pipeline"),
        nexus=_nexus.summarise(f),
        failure=attr_str(attrs, "failure"),
        writer_gone=writer_gone,
    )


def _summarise_stream(group: Any) -> StreamSummary:
    ids = group["frame_id"][:]
    n = len(ids)
    stamps = group["timestamp_ns"][:n]
    duration = (int(stamps[-1]) - int(stamps[0])) / 1e9 if n > 1 else 0.0
    ledger_rows = group["dropped"][:]
    ledger = tuple(
        (int(r["first_id"]), int(r["count"]), r["reason"].decode("utf-8", "replace"))
        for r in ledger_rows
    )
    p50 = p99 = None
    if "latency_ns" in group and n:
        lat = group["latency_ns"][:n]
        if len(lat):
            p50, p99 = (float(v) / 1e6 for v in np.percentile(lat, [50, 99]))
    frames = group["frames"]
    return StreamSummary(
        name=group.name.lstrip("/"),
        frames=n,
        shape=tuple(frames.shape[1:]),
        dtype=str(frames.dtype),
        compression=attr_str(frames.attrs, "compression") or None,
        first_frame_id=int(ids[0]) if n else None,
        last_frame_id=int(ids[-1]) if n else None,
        duration_s=duration,
        rate_hz=(n - 1) / duration if duration > 0 else 0.0,
        dropped=sum(count for _, count, _ in ledger),
        ledger=ledger,
        latency_p50_ms=p50,
        latency_p99_ms=p99,
    )


def export_nwb(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    link: bool = True,
    compression: bool = False,
    metadata: Mapping[str, Any] | None = None,
    imaging: Mapping[str, str] | None = None,
) -> Path:
    """Export a sealed run file to NWB (``_nwb`` says what goes where).

    Args:
        link: camera frames as external links to ``run`` (nothing copied;
            keep the two files together: in one directory the link is the
            run file's name, so the pair can be moved anywhere together;
            ``_link_to_run``); False copies them, one frame per chunk.
        compression: with ``link=False``, gzip the copied frames.
        metadata: run metadata to add or replace (``session_description``,
            ``subject_id``, ``species``, ``age``, ...).
        imaging: ``{stream: "one_photon" | "two_photon"}``: streams that are
            microscope images (``OnePhotonSeries``/``TwoPhotonSeries``).

    Returns:
        The NWB file's path.

    Raises:
        FileExistsError: ``out`` exists.
        ValueError: not a rigd run, still being recorded, or required
            metadata missing (the message names each field).
        ImportError: pynwb is not installed (``pip install 'rigd[nwb]'``).
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; give a new file name for the NWB export")
    try:
        from rigd.storage import _nwb
    except ImportError as exc:
        raise ImportError(
            f"NWB export needs pynwb ({exc}); install it with pip install 'rigd[nwb]'"
        ) from exc
    if read_superblock(run).open_for_write:
        if writer_alive(run):
            raise ValueError(f"{run} is still being recorded; export it once the run has stopped")
        raise ValueError(
            f"{run} is not sealed and no run writes it: its writer was killed or crashed. "
            f"Seal it with `rigd recover {run}`, then export it"
        )
    with open_file(run, "r") as f:
        if "run_id" not in f.attrs:
            raise ValueError(f"{run} is an HDF5 file but not a rigd run (no run_id attribute)")
        streams = stream_groups(f)
        # NWB has no place for structured records or pickled messages: they
        # stay in the run file (read them with h5py, README "Link kinds").
        skipped = [g.name for g in streams if attr_str(g.attrs, "rigd_kind", "frames") != "frames"]
        if skipped:
            log.warning("%s: streams %s are records or messages, not exported to NWB", run, skipped)
        _nwb.write_nwb(
            f,
            [g for g in streams if g.name not in skipped],
            out,
            link=link,
            compression=compression,
            metadata=metadata,
            imaging=imaging,
        )
    if link:
        _link_to_run(out, Path(run))
    return out


def _link_to_run(out: Path, run: Path) -> None:
    """Name the run file in the NWB file's links so that the pair can move.

    Beside the NWB file (one directory): by its name alone, so the two
    files moved (or copied) together to any directory still open. Elsewhere:
    by its absolute path, which HDF5 follows wherever the NWB file goes and,
    once the run file is gone from there, looks for by its name beside the
    NWB file: the pair moved together into one directory still opens. (pynwb
    writes the path relative to the NWB file's directory, which breaks when
    the two land in one directory.)
    """
    run = run.resolve()
    same = run.parent == out.resolve().parent
    relink_external(out, str(run), run.name if same else str(run))
