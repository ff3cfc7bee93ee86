"""What a derived run file carries from the run file it was made from.

``rigd reprocess`` replays a run file through a pipeline into a new run file.
The new file must not look better than its source: it carries the source's
run metadata (the subject, the session, ...) beside a provenance note, and,
for each stream replayed from the source, the source's drop ledger with its
reasons (``ring_full``, ``missing_packets``, ``restart of recorder ...``,
events of count 0), where the replay's recorder could only see gaps in the
frame ids and wrote ``gap``; and the source's per-frame latency to disk
(``latency_ns``, by frame id), where the replay's recorder could only
measure the time since the original acquisition (its frames keep the
source's ``timestamp_ns``). A stream the replay computed has no latency to
the source's disk to give: its ``latency_ns`` is removed (``inspect`` shows
none), as is that of a replayed stream whose source recorded none.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rigd.storage._h5file import attr_str, open_file, open_for_reading, stream_groups
from rigd.storage._run_layout import LEDGER_DTYPE, DropReason
from rigd.storage._run_metadata import RESERVED_ATTRIBUTES

__all__ = [
    "JOB_ATTRIBUTE",
    "SourceRun",
    "carry_ledger",
    "carry_provenance",
    "carry_source",
    "made_by",
    "mark_failed",
    "read_source",
    "run_metadata",
    "source_state",
]

#: The source run's own attributes a derived file keeps, under these names.
SOURCE_ATTRIBUTES = {
    "run_id": "reprocessed_from_run_id",
    "start_time": "reprocessed_from_start_time",
    "stop_time": "reprocessed_from_stop_time",
    "pipeline": "reprocessed_from_pipeline",
}
_SOURCE_NAMES = frozenset(SOURCE_ATTRIBUTES.values())

#: The root attribute naming the replay that made a derived file (``rigd
#: reprocess`` gives each file's replay an id of its own): a job tells its own
#: outputs from those another job made at the same names.
JOB_ATTRIBUTE = "reprocess_job"


def made_by(path: str | os.PathLike[str], job: str) -> bool:
    """Whether the run file ``path`` was made by the replay ``job`` (its
    ``reprocess_job`` attribute; read live when a writer has the file open or
    left it unsealed). False for a missing or unreadable file; never raises.
    """
    try:
        with open_for_reading(path) as f:
            return attr_str(f.attrs, JOB_ATTRIBUTE) == job
    except (OSError, ValueError, KeyError):
        return False


def mark_failed(path: str | os.PathLike[str], failure: str) -> None:
    """Mark a sealed derived run file whose making failed: ``run_state``
    ``failed`` and the ``failure`` attribute (the error), so what it holds
    is never taken for a complete run (``rigd inspect`` shows both).

    Raises:
        OSError: the file cannot be opened for writing.
    """
    with open_file(path, "r+", locking=False) as f:
        f.attrs["run_state"] = "failed"
        f.attrs["failure"] = failure


@dataclass(frozen=True, slots=True)
class SourceRun:
    """What a derived file carries from a sealed run file, read in one opening
    (``read_source``): a replay reads its source once, before it runs, and
    writes all of it into its output in one opening after (``carry_source``).

    Attributes:
        path: the run file.
        metadata: its user metadata (``run_metadata``).
        state: what a derived file must say of it, or None (``source_state``).
        kept: its run id, times and pipeline under their ``reprocessed_from_*``
            names (``carry_provenance``).
        ledgers: each stream's drop ledger rows (``LEDGER_DTYPE``).
        latencies: each stream's ``(frame_id, latency_ns)`` per frame (int64
            arrays, ns), or None: recorded without (``latency_trace: false``).
    """

    path: str
    metadata: dict[str, Any]
    state: str | None
    kept: dict[str, Any]
    ledgers: dict[str, np.ndarray[Any, Any]]
    latencies: dict[str, Latencies | None] = field(default_factory=dict)


#: A stream's frame ids and their latency to disk (ns), one each.
Latencies = tuple["np.ndarray[Any, Any]", "np.ndarray[Any, Any]"]


def read_source(path: str | os.PathLike[str]) -> SourceRun:
    """Read what a file derived from the sealed run file ``path`` carries from it.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a rigd run file.
    """
    with _open_run(path) as f:
        attrs = dict(f.attrs.items())
        groups = list(stream_groups(f))
        ledgers = {g.name.lstrip("/"): g["dropped"][:] for g in groups}
        latencies = {g.name.lstrip("/"): _latencies(g) for g in groups}
    metadata: dict[str, Any] = {}
    for key, value in attrs.items():
        if key in RESERVED_ATTRIBUTES or key in _SOURCE_NAMES:
            continue
        if isinstance(value, np.ndarray):
            value = value.tolist()
        elif isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        metadata[key] = value
    kept = {new: attrs[old] for old, new in SOURCE_ATTRIBUTES.items() if old in attrs}
    return SourceRun(os.fspath(path), metadata, _state_note(attrs), kept, ledgers, latencies)


def _latencies(group: Any) -> Latencies | None:
    """A stream group's frame ids and latencies, as many of each; None without latencies."""
    if "latency_ns" not in group:
        return None
    ids = group["frame_id"][:]
    latency = group["latency_ns"][: len(ids)]
    return ids[: len(latency)].astype(np.int64), latency.astype(np.int64)


def run_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A sealed run file's user metadata (rigd's own attributes left out, and
    the ``reprocessed_from_*`` ones ``carry_provenance`` writes), as plain
    Python values that ``RunWriter``'s ``metadata`` takes back.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a rigd run file.
    """
    return read_source(path).metadata


def source_state(path: str | os.PathLike[str]) -> str | None:
    """What a derived file must say of a sealed run file whose ``run_state`` is
    not ``complete`` (``failed``, ``recovered``: what it holds may be short of
    the run), e.g. ``"the source run's state was failed: <its failure>"``;
    ``None`` for a complete run. ``rigd reprocess`` writes it in the new
    file's ``provenance`` and its row's warning.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a rigd run file.
    """
    return read_source(path).state


def _state_note(attrs: Mapping[str, Any]) -> str | None:
    state, failure, recovered = (
        attr_str(attrs, name) for name in ("run_state", "failure", "recovered_time")
    )
    if state == "complete":
        return None
    said = f"the source run's state was {state or 'not recorded'}"
    if failure:
        return f"{said}: {failure}"
    if recovered:
        return f"{said} (left open, repaired by rigd recover at {recovered})"
    return said


def carry_provenance(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Keep ``source``'s run id, start and stop times and pipeline (YAML) in
    ``target``, a file made from it, as ``reprocessed_from_run_id``,
    ``reprocessed_from_start_time``, ``reprocessed_from_stop_time`` and
    ``reprocessed_from_pipeline`` (root attributes, beside its own ``run_id``,
    ... of the run that made it; a pipeline text of any length). Replaces
    those of an earlier generation (``run_metadata`` carried them over).

    Raises:
        OSError: ``target`` cannot be written.
        ValueError: ``source`` is not a rigd run.
    """
    carry_source(read_source(source), target, {}, latency=False)


def carry_ledger(
    source: str | os.PathLike[str], target: str | os.PathLike[str], streams: Mapping[str, str]
) -> int:
    """Put the drop ledger of each stream replayed from ``source`` into ``target``
    (``carry_source`` says how); returns the rows carried.

    Raises:
        KeyError: a stream is not in its file.
        OSError: ``target`` cannot be written.
    """
    return carry_source(read_source(source), target, streams, provenance=False, latency=False)


def carry_source(
    source: SourceRun,
    target: str | os.PathLike[str],
    streams: Mapping[str, str],
    *,
    provenance: bool = True,
    latency: bool = True,
) -> int:
    """Write into ``target`` (a file made from ``source``, opened once) the
    source's run id, times and pipeline (``carry_provenance``; not with
    ``provenance=False``), the drop ledger of each stream replayed from it,
    and the latency to disk of every stream (not with ``latency=False``).

    Args:
        streams: ``{target stream: source stream}``: the streams of the new
            file whose frames are the source stream's, ids included.

    The target's ``gap`` rows that the source's rows cover (ids the source
    never had: the replay saw only the hole) are replaced by the source's
    rows, reasons kept; the target's other rows (drops or events of the
    replay itself) stay. Rows are in id order; the stream's
    ``frames_dropped`` is recounted. Returns the rows carried.

    Latency to disk (``latency_ns``, ns per frame): a replayed stream's
    frames get the source's values, by frame id; a replayed stream whose
    source has none (``latency_trace: false``), or holds a frame id the
    source lacks, and every stream not in ``streams`` (computed by the
    replay: its latency would be the time since the original acquisition,
    not a processing time) are left without ``latency_ns``. A carried
    ``latency_ns`` has the attribute ``carried_from_source`` (true).

    Raises:
        KeyError: a stream is not in its file.
        OSError: ``target`` cannot be written.
    """
    rows = {origin: source.ledgers[origin] for origin in set(streams.values())}
    carried = 0
    with open_file(target, "r+", locking=False) as f:
        if provenance:
            for name in SOURCE_ATTRIBUTES.values():
                if name in f.attrs:
                    del f.attrs[name]
            for name, value in source.kept.items():
                f.attrs[name] = value
        if latency:
            for group in stream_groups(f):
                name = group.name.lstrip("/")
                origin = streams.get(name)
                _carry_latency(group, source.latencies.get(origin) if origin else None)
        for name, origin in streams.items():
            theirs = rows[origin]
            if not len(theirs):
                continue
            ledger = f[name]["dropped"]
            covered = _spans(theirs)
            mine = [
                row
                for row in ledger[:]
                if _reason(row) != DropReason.GAP or not _inside(row, covered)
            ]
            merged = sorted(
                [*theirs, *mine], key=lambda r: (int(r["first_id"]), int(r["noted_ns"]))
            )
            table = np.zeros(len(merged), LEDGER_DTYPE)
            for k, row in enumerate(merged):
                table[k] = (row["first_id"], row["count"], row["reason"], row["noted_ns"])
            ledger.resize(len(table), axis=0)
            ledger[:] = table
            f[name].attrs["frames_dropped"] = int(table["count"].sum())
            carried += len(theirs)
    return carried


def _carry_latency(group: Any, theirs: Latencies | None) -> None:
    """Put the source's latency of each frame of the target stream ``group``
    (``theirs``: the source stream's ids and latencies) in its ``latency_ns``;
    remove ``latency_ns`` where the source cannot give every frame's."""
    if "latency_ns" not in group:
        return
    ids = group["frame_id"][:]
    if theirs is not None and len(ids):
        source_ids, latency = theirs
        order = np.argsort(source_ids, kind="stable")
        sorted_ids = source_ids[order]
        at = np.searchsorted(sorted_ids, ids)
        found = at < len(sorted_ids)
        found[found] = sorted_ids[at[found]] == ids[found]
        if found.all():
            dataset = group["latency_ns"]
            dataset.resize(len(ids), axis=0)
            dataset[:] = latency[order[at]]
            dataset.attrs["carried_from_source"] = True
            return
    elif theirs is not None:
        return  # no frame: nothing to say
    del group["latency_ns"]


def _reason(row: Any) -> str:
    return bytes(row["reason"]).rstrip(b"\0").decode("utf-8", "replace")


def _spans(rows: Any) -> list[tuple[int, int]]:
    """The id ranges ``[first, end)`` of rows with a count, adjacent ones joined."""
    spans: list[tuple[int, int]] = []
    for first, end in sorted(
        (int(r["first_id"]), int(r["first_id"]) + int(r["count"])) for r in rows if r["count"]
    ):
        if spans and first <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((first, end))
    return spans


def _inside(row: Any, spans: list[tuple[int, int]]) -> bool:
    first, end = int(row["first_id"]), int(row["first_id"]) + int(row["count"])
    return any(a <= first and end <= b for a, b in spans)


@contextlib.contextmanager
def _open_run(path: str | os.PathLike[str]) -> Iterator[Any]:
    """``path`` open for reading, once it is known to be a rigd run.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an HDF5 file that is not a rigd run (no ``run_id``).
    """
    with open_file(path, "r") as f:
        if "run_id" not in f.attrs:
            raise ValueError(f"{path} is an HDF5 file but not a rigd run (no run_id attribute)")
        yield f
