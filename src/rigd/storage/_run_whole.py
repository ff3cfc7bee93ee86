"""Whether a run file is whole: the one test ``rigd recover``, ``rigd inspect``,
``rigd export`` and ``rigd reprocess`` (and ``FilePlayback``) all apply.

A file shorter than the end-of-file address its superblock records is either
a partial copy (``head -c``, a transfer cut short: truncated, refused) or the
file of a writer killed, or stopped by a full disk, after giving its last
chunks their space and before writing them (whole: ``rigd recover`` extends
it with zeros, ``_repair_view``). The two are told apart as ``recover_run``
repairs: through ``RepairedView``, a short file is whole only if it was never
sealed, HDF5 reads every piece of metadata the repair reads, and every frame
the repair keeps lies within the file's bytes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rigd.storage import _nexus
from rigd.storage._h5file import attr_str, open_file_object, stream_groups
from rigd.storage._repair_view import RepairedView
from rigd.storage._superblock import Superblock, read_superblock, truncated_message
from rigd.storage._writer_lock import writer_alive

__all__ = ["ROWS", "check_whole", "recoverable_frames", "survey"]

#: The run states of a sealed file.
SEALED = ("complete", "recovered", "aborted")
#: A stream's datasets of one row per frame.
ROWS = ("frames", "frame_id", "timestamp_ns", "latency_ns")


def check_whole(path: str | os.PathLike[str]) -> None:
    """Refuse a truncated run file, as ``rigd recover`` would refuse it.

    A file at least as long as its superblock's end-of-file address passes
    at once; so does one a live writer holds (it is still growing). A short
    sealed file is truncated; a short unsealed one is ``survey``'d.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not HDF5, or truncated (``truncated_message``:
            it names the file, both sizes and the fix), or, short and
            unsealed, not a rigd run file.
    """
    block = read_superblock(path)
    size = os.stat(path).st_size
    if block.version < 2 or size >= block.end_of_file:
        return
    if not block.open_for_write:
        raise ValueError(truncated_message(path, size, block.end_of_file))
    if writer_alive(path):
        return
    with RepairedView(path, block) as view:
        survey(view, Path(path), block, size)


def survey(
    view: RepairedView, path: Path, block: Superblock, size: int
) -> tuple[str, dict[str, int]]:
    """Read what ``recover_run`` reads, through ``view``: the run's state and,
    per stream, the frames a repair keeps (a sealed file: the frames it has).

    Raises:
        ValueError: not a rigd run; truncated (``truncated_message``): HDF5
            met missing metadata in a file short of its recorded end, or the
            file is short and sealed, or short with a kept frame past its end;
            damaged: HDF5 met damaged metadata in a file not short.
    """
    short = size < block.end_of_file
    try:
        state, counts, within = _read(view, path, size)
    except ValueError:
        raise
    except Exception as exc:  # noqa: BLE001 - HDF5 met missing or damaged metadata
        if short:
            raise ValueError(truncated_message(path, size, block.end_of_file)) from None
        detail = " ".join(str(exc).split())
        raise ValueError(
            f"{path} is damaged ({detail}); nothing was changed. Restore it from a copy"
        ) from None
    # Short of its recorded end, a file is whole only if its writer was killed,
    # or met a full disk, after giving chunks their space and before writing
    # them: never sealed, with every frame it keeps in the file. Anything
    # else (a sealed file, a frame kept past the end) is a partial copy.
    if short and (state in SEALED or not within):
        raise ValueError(truncated_message(path, size, block.end_of_file))
    return state, counts


def _read(view: RepairedView, path: Path, size: int) -> tuple[str, dict[str, int], bool]:
    """``survey``'s reads: the state, the frames kept per stream, and whether the
    bytes of all of them lie within the file's first ``size`` bytes.

    Raises:
        ValueError: not a rigd run. Anything else: HDF5 met missing or
            damaged metadata.
    """
    with open_file_object(view) as f:
        if "run_id" not in f.attrs:
            raise ValueError(f"{path} is an HDF5 file but not a rigd run (no run_id attribute)")
        state = attr_str(f.attrs, "run_state", "unknown")
        counts = {}
        within = True
        for group in stream_groups(f):
            columns = _nexus.field_columns(f, group)
            n = min([recoverable_frames(group), *(c.shape[0] for c in columns.values())])
            counts[group.name.lstrip("/")] = n
            group["dropped"]["count"].sum()
            datasets = [group[name] for name in ROWS if name in group]
            within = within and all(
                _ends_within(d, n, size) for d in [*datasets, *columns.values()]
            )
        return state, counts, within


def _ends_within(dataset: Any, n: int, size: int) -> bool:
    """Whether the chunk holding row ``n - 1`` of ``dataset`` ends by byte ``size``
    (chunks are given their space in row order: the last one kept ends last)."""
    if n == 0 or dataset.chunks is None:
        return True
    k = dataset.chunks[0]
    info = dataset.id.get_chunk_info_by_coord(((n - 1) // k * k, *((0,) * (dataset.ndim - 1))))
    return info.byte_offset is None or int(info.byte_offset) + int(info.size) <= size


def recoverable_frames(group: Any) -> int:
    """Frames with both their records and their data chunk in the file."""
    n = min(group[name].shape[0] for name in ("frame_id", "timestamp_ns") if name in group)
    if "latency_ns" in group:
        n = min(n, group["latency_ns"].shape[0])
    frames = group["frames"]
    n = min(n, frames.shape[0])
    k = frames.chunks[0]
    zeros = (0,) * (frames.ndim - 1)
    # A crash inside a flush could write a record before its chunk's index
    # entry: walk back to the last frame whose chunk is really there.
    while (
        n > 0 and frames.id.get_chunk_info_by_coord(((n - 1) // k * k, *zeros)).byte_offset is None
    ):
        n = (n - 1) // k * k
    return int(n)
