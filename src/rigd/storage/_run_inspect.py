"""Reading run files: a run's summary, its NWB export (a stream frame by frame:
``_stream_reader``).

All of it works on a file still being recorded (opened live, in SWMR
mode), except the NWB export, which wants a sealed run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rigd.storage import _nexus
from rigd.storage._h5file import (
    attr_str,
    open_file,
    open_file_object,
    open_for_reading,
    relink_external,
    stream_groups,
)
from rigd.storage._repair_view import RepairedView
from rigd.storage._run_layout import RunSummary, StreamSummary
from rigd.storage._run_metadata import RESERVED_ATTRIBUTES
from rigd.storage._run_whole import check_whole, survey
from rigd.storage._superblock import read_superblock, truncated_message
from rigd.storage._writer_lock import writer_alive

log = logging.getLogger(__name__)


def inspect_run(path: str | os.PathLike[str]) -> RunSummary:
    """Summarise a run file: streams, frames, rate, drops, state, metadata.

    Works on a file still being recorded (it reads it live, in SWMR mode),
    and on one its writer left unsealed (``RunSummary.writer_gone``; one
    left short of its recorded end is read as ``recover_run`` would see it,
    ``_repair_view``, and refused as truncated where it would be,
    ``_run_whole``). Writes nothing.

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
            survey(view, Path(path), block, size)  # refuses a truncated file as recover does
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
        FileNotFoundError: ``out``'s directory does not exist (or is not one).
        ValueError: not a rigd run, truncated (``check_whole``), still being
            recorded or not sealed, or required metadata missing (the
            message names each field). Nothing is written then.
        ImportError: pynwb is not installed (``pip install 'rigd[nwb]'``).
    """
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists; give a new file name for the NWB export")
    if not out.parent.is_dir():
        what = "is not a directory" if out.parent.exists() else "does not exist"
        raise FileNotFoundError(
            f"cannot write {out}: its directory {out.parent} {what}; make it, or give "
            "another path for the NWB export"
        )
    try:
        from rigd.storage import _nwb
    except ImportError as exc:
        raise ImportError(
            f"NWB export needs pynwb ({exc}); install it with pip install 'rigd[nwb]'"
        ) from exc
    check_whole(run)  # HDF5 would only say "truncated file: eof = ..."
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
