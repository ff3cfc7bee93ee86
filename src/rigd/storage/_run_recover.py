"""Sealing a run file, and repairing one a crashed writer left unsealed.

Closing a writer reopens the file without SWMR to seal it (``seal_run``):
stop time, counts and ``run_state = "complete"``. A file left
``recording`` by a crash is repaired by ``recover_run`` and marked
``recovered``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from rigd.storage import _nexus
from rigd.storage._h5file import open_file, stream_groups
from rigd.storage._repair_view import RepairedView
from rigd.storage._reserve import reserve_path
from rigd.storage._run_layout import RecoveryReport
from rigd.storage._run_metadata import utc_now_iso
from rigd.storage._run_whole import ROWS, SEALED, recoverable_frames, survey
from rigd.storage._superblock import Superblock, read_superblock, repair_superblock
from rigd.storage._writer_lock import WriterLock

log = logging.getLogger(__name__)


def seal_run(
    path: Path,
    counts: Mapping[str, int],
    dropped: Mapping[str, int],
    failure: str | None = None,
) -> None:
    """Seal a closed run's file: frame counts, stop time, ``run_state = "complete"``;
    with ``failure`` (the run failed: an actor gave up, a node was lost),
    ``run_state = "failed"`` and the ``failure`` attribute, written in the same
    opening (a reader never sees the file complete first)."""
    # Without HDF5's file lock: a SWMR reader (a viewer left open) holds a shared
    # lock on the file, and a run must still seal with readers attached. The
    # writer is closed, so nothing else writes; readers see the sealed file.
    with open_file(path, "r+", locking=False) as f:
        for name, n in counts.items():
            group = f[name]
            group["frames"].resize(n, axis=0)
            group.attrs["frames_recorded"] = n
            group.attrs["frames_dropped"] = dropped[name]
        stop_time = utc_now_iso()
        f.attrs["stop_time"] = stop_time
        f.attrs["run_state"] = "complete" if failure is None else "failed"
        if failure is not None:
            f.attrs["failure"] = failure
        _nexus.seal_entry(f, end_time=stop_time)
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def check_sealed(path: str | os.PathLike[str]) -> None:
    """Refuse a run file its writer has not sealed (HDF5's open-for-write mark).

    Such a file is a run still recording, or one whose writer died before
    sealing it; HDF5 opens it for a SWMR read only (naming ``h5clear``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not HDF5, or it is not sealed; the message
            names the file and the fix (``rigd recover FILE``, once no run
            writes it).
    """
    if read_superblock(path).open_for_write:
        where = os.fspath(path)
        raise ValueError(
            f"{where} is not sealed: its run is still recording, or its writer died "
            f"before sealing it; once no run writes it, seal it with `rigd recover {where}` "
            "and try again"
        )


def recover_run(path: str | os.PathLike[str], *, run_state: str = "recovered") -> RecoveryReport:
    """Repair a run file a crashed writer left unsealed; mark it ``run_state``.

    ``run_state`` is ``recovered`` by default; a run whose start failed or
    was interrupted is marked ``aborted`` (``Pipeline.load``).

    Clears the writer's open-for-write mark (as ``h5clear -s``), trims every
    stream to the frames whose records and data both reached the file (what
    was flushed), and records the frame counts. A sealed file is left alone.

    Nothing is written unless all of it can be: a file a live writer holds
    (``_writer_lock``), a truncated file (``_repair_view``) and a file that
    is not a rigd run are refused with the file byte for byte as it was.
    The writer lock is held for the whole repair.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not HDF5, not a rigd run file, or truncated
            (its size below its superblock's end-of-file address, with
            metadata missing).
        OSError: a live writer's process holds the file (the message says
            to stop its run), or the file cannot be written (permissions,
            a full disk).
    """
    path = Path(path)
    block = read_superblock(path)
    lock = WriterLock(path)
    try:
        return _recover_held(path, block, run_state)
    finally:
        lock.release()


def _recover_held(path: Path, block: Superblock, run_state: str) -> RecoveryReport:
    """``recover_run`` with the writer lock held."""
    size = path.stat().st_size
    short = size < block.end_of_file
    with RepairedView(path, block) as view:
        state, counts = survey(view, path, block, size)  # refuses a truncated file
    if state in SEALED and not (short or block.open_for_write):
        return RecoveryReport(str(path), state, repaired=False, frames=counts)
    # A crashed writer's reserve (``_reserve``): its space is for this repair.
    reserve_path(path).unlink(missing_ok=True)
    repair_superblock(path)
    with open_file(path, "r+") as f:
        counts = {}
        for group in stream_groups(f):
            columns = _nexus.field_columns(f, group)
            n = min([recoverable_frames(group), *(c.shape[0] for c in columns.values())])
            for name in ROWS:
                if name in group:
                    group[name].resize(n, axis=0)
            for column in columns.values():
                column.resize(n, axis=0)
            counts[group.name.lstrip("/")] = n
            group.attrs["frames_recorded"] = n
            group.attrs["frames_dropped"] = int(group["dropped"]["count"].sum())
        f.attrs["run_state"] = run_state
        f.attrs["recovered_time"] = utc_now_iso()
        _nexus.seal_entry(f, end_time=f.attrs["recovered_time"])
        if run_state == "aborted":  # a start that failed says so itself (Pipeline.load)
            log.debug("sealed %s as aborted; frames per stream: %s", path, counts)
        else:
            log.info("recovered %s: %s frame(s) per stream", path, counts)
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
    return RecoveryReport(str(path), run_state, repaired=True, frames=counts)
