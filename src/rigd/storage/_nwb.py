"""NWB export of a run file: the only module of rigd that imports pynwb.

It reads the run file through the h5py objects ``_run_inspect.export_nwb``
hands it (``_h5file`` stays the one module that imports h5py). ``write_nwb`` writes one
NWB file (Neurodata Without Borders, the format of DANDI) from a sealed run
file:

- a camera stream is an ``ImageSeries`` in ``acquisition`` (a
  ``OnePhotonSeries`` or ``TwoPhotonSeries`` with its ``ImagingPlane``,
  ``OpticalChannel`` and ``Device`` when the run says the stream is imaging
  data); its data is an external link to the run file (``link=True``, the
  default: nothing is copied, keep the two files together) or a copy,
  chunked one frame per chunk and optionally gzip-compressed;
- timestamps are the frames' own acquisition times, in seconds from the
  session start;
- a records stream (``FrameStats``, motion shifts, ROI traces) is a
  ``TimeSeries`` per field (``<stream>_<field>``), in the processing
  module ``misc``;
- the drop ledger is the intervals table ``dropped_frames``: one row per
  span of frames not recorded, from the last frame before it to the first
  after it, with the stream, first id, count and reason;
- session and subject metadata come from the run metadata (``rigd start
  --meta KEY=VALUE``), under NWB's own names: ``session_description``,
  ``experimenter``, ``institution``, ``lab``, ``experiment_description``,
  ``session_id``, ``keywords``, and for the subject ``subject_id``,
  ``species``, ``sex``, ``age`` (ISO 8601 duration, ``P90D``),
  ``date_of_birth``, ``strain``, ``genotype``, ``weight``,
  ``subject_description`` (or all of them in one JSON ``subject`` mapping).
  Imaging streams need ``indicator``, ``location``, ``excitation_lambda``
  (nm) and ``emission_lambda`` (nm).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import isodate
import numpy as np
from hdmf.backends.hdf5 import H5DataIO
from hdmf.data_utils import DataChunkIterator
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.file import Subject
from pynwb.image import ImageSeries
from pynwb.ophys import OnePhotonSeries, OpticalChannel, TwoPhotonSeries

__all__ = ["REQUIRED", "write_nwb"]

log = logging.getLogger(__name__)

#: Run metadata an NWB export cannot do without (DANDI's and nwbinspector's
#: rules): the session's description and the subject's id, species and age.
REQUIRED = ("session_description", "subject_id", "species", "age or date_of_birth")
_SESSION = ("experimenter", "institution", "lab", "experiment_description", "keywords")
_SUBJECT = ("subject_id", "species", "sex", "age", "date_of_birth", "strain", "genotype")
_IMAGING = {"one_photon": OnePhotonSeries, "two_photon": TwoPhotonSeries}
_IMAGING_REQUIRED = ("indicator", "location", "excitation_lambda", "emission_lambda")


def write_nwb(
    f: Any,
    streams: list[Any],
    out: str | os.PathLike[str],
    *,
    link: bool = True,
    compression: bool = False,
    metadata: Mapping[str, Any] | None = None,
    imaging: Mapping[str, str] | None = None,
) -> None:
    """Write the open run file ``f`` (its stream groups ``streams``) as ``out``.

    Args:
        link: camera data as external links to ``run`` (no copy); False copies it.
        compression: with ``link=False``, gzip the copied frames.
        metadata: values that add to (or replace) the run's metadata.
        imaging: ``{stream: "one_photon" | "two_photon"}``, added to the
            run metadata's ``imaging`` mapping: those streams are microscope
            images, not a plain camera.

    Raises:
        ValueError: the run lacks required metadata (the message names every
            missing field and how to give it).
    """
    meta = _run_metadata(f.attrs)
    meta.update(metadata or {})
    kinds = dict(_mapping(meta.get("imaging")))
    kinds.update(imaging or {})
    images = {g.name.lstrip("/") for g in streams if g["frames"].ndim >= 3}
    _check(meta, kinds, images)
    start = _start_time(f.attrs, streams)
    nwb = _nwbfile(f.attrs, meta, start)
    t0 = int(start.timestamp() * 1e9)
    for group in streams:
        name = group.name.lstrip("/")
        n = len(group["frame_id"])
        times = (group["timestamp_ns"][:n].astype(np.int64) - t0) / 1e9
        if name in images:
            _add_images(nwb, group, name, n, times, kinds.get(name), meta, link, compression)
        else:
            _add_records(nwb, group, name, n, times)
    _add_ledger(nwb, streams, t0)
    with NWBHDF5IO(str(out), "w") as io:
        io.write(nwb)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _mapping(value: Any) -> Mapping[str, Any]:
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and value.startswith("{"):
        loaded = json.loads(value)
        if isinstance(loaded, Mapping):
            return loaded
    return {}


def _run_metadata(attrs: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for key, value in attrs.items():
        meta[key] = value.tolist() if isinstance(value, np.ndarray) else value
    # A JSON ``subject`` mapping gives the subject's fields too.
    for key, value in _mapping(meta.get("subject")).items():
        meta.setdefault(key, value)
    return meta


def _check(meta: Mapping[str, Any], kinds: Mapping[str, str], images: set[str]) -> None:
    missing = [
        name
        for name in ("session_description", "subject_id", "species")
        if not _text(meta.get(name, "")).strip()
    ]
    if not (meta.get("age") or meta.get("date_of_birth")):
        missing.append("age or date_of_birth")
    if meta.get("age"):
        _check_age(_text(meta["age"]))
    if meta.get("date_of_birth"):
        try:
            dt.datetime.fromisoformat(_text(meta["date_of_birth"]))
        except ValueError:
            raise ValueError(
                f"date_of_birth {_text(meta['date_of_birth'])!r} is not an ISO 8601 date: "
                "give e.g. 2026-08-31 or 2026-08-31T09:00+02:00"
            ) from None
    unknown = sorted(set(kinds) - images)
    if unknown:
        raise ValueError(
            f"imaging streams {unknown} are not camera streams of this run; it has {sorted(images)}"
        )
    bad = sorted(k for k, v in kinds.items() if v not in _IMAGING)
    if bad:
        raise ValueError(f"imaging kind of {bad} must be one of {sorted(_IMAGING)}")
    if kinds:
        missing += [name for name in _IMAGING_REQUIRED if name not in meta]
    if missing:
        raise ValueError(
            f"the run lacks metadata NWB requires: {', '.join(missing)}; give them at "
            "`rigd start --meta KEY=VALUE` or to the export (`rigd export --meta KEY=VALUE`)"
        )


def _check_age(age: str) -> None:
    """NWB's (and DANDI's) subject age: an ISO 8601 duration, or a range of two
    (``P90D/P100D``), as nwbinspector's ``check_subject_age`` reads it (isodate)."""
    try:
        for part in age.split("/", 1):
            isodate.parse_duration(part)
    except (isodate.ISO8601Error, ValueError):
        raise ValueError(
            f"age {age!r} is not an ISO 8601 duration, which NWB requires: give e.g. P90D "
            "(90 days), P12W (12 weeks) or P1Y2M, or a range such as P90D/P100D"
        ) from None


def _start_time(attrs: Any, streams: list[Any]) -> dt.datetime:
    """The run's start, or its first frame's time if that came before (NWB's times
    are never negative)."""
    start = dt.datetime.fromisoformat(_text(attrs["start_time"]))
    firsts = [int(g["timestamp_ns"][0]) for g in streams if len(g["timestamp_ns"])]
    if firsts:
        first = dt.datetime.fromtimestamp(min(firsts) // 1000 / 1e6, dt.UTC)
        start = min(start, first)
    return start


def _nwbfile(attrs: Any, meta: Mapping[str, Any], start: dt.datetime) -> NWBFile:
    run_id = _text(attrs["run_id"])
    session: dict[str, Any] = {}
    for key in _SESSION:
        if key in meta:
            value = meta[key]
            session[key] = (
                [value] if key in ("experimenter", "keywords") and isinstance(value, str) else value
            )
    subject = {
        k: _text(meta[k]) if k != "date_of_birth" else meta[k] for k in _SUBJECT if k in meta
    }
    if "date_of_birth" in subject:
        subject["date_of_birth"] = dt.datetime.fromisoformat(_text(subject["date_of_birth"]))
    if "weight" in meta:
        subject["weight"] = _text(meta["weight"])
    if "subject_description" in meta:
        subject["description"] = _text(meta["subject_description"])
    return NWBFile(
        session_description=_text(meta["session_description"]),
        identifier=_text(meta.get("identifier", f"rigd-{run_id}")),
        session_start_time=start,
        session_id=_text(meta.get("session_id", run_id)),
        source_script=f"rigd {_text(attrs.get('rigd_version', ''))}",
        source_script_file_name=_text(attrs.get("file_name", "")) or "rigd",
        subject=Subject(**subject),
        **session,
    )


def _add_images(
    nwb: NWBFile,
    group: Any,
    name: str,
    n: int,
    times: np.ndarray[Any, Any],
    kind: str | None,
    meta: Mapping[str, Any],
    link: bool,
    compression: bool,
) -> None:
    frames = group["frames"]
    if link and "conversion" not in frames.attrs:
        # A file from before NeXus: its frames lack the attributes NWB wants
        # on an ImageSeries' data, and it is read-only here: copy them.
        log.warning("%s: frames copied, not linked (a run file older than the export)", name)
        link = False
    if link:
        data: Any = H5DataIO(frames, link_data=True)
    else:
        data = H5DataIO(
            DataChunkIterator(frames, maxshape=(n, *frames.shape[1:]), buffer_size=16),
            chunks=(1, *frames.shape[1:]),
            compression="gzip" if compression else None,
        )
    common: dict[str, Any] = {
        "name": name,
        "data": data,
        "timestamps": times,
        "unit": _text(frames.attrs.get("units", "")) or "n.a.",
        "description": f"camera stream {name!r} recorded by rigd, frames in acquisition order",
        "comments": "frame ids: see the run file's /" + name + "/frame_id",
    }
    if kind is None:
        nwb.add_acquisition(ImageSeries(format="raw", **common))
        return
    device = nwb.create_device(name=f"{name}_device", description=f"the rig's {name}")
    channel = OpticalChannel(
        name="channel", description="emission", emission_lambda=float(meta["emission_lambda"])
    )
    plane = nwb.create_imaging_plane(
        name=f"{name}_plane",
        optical_channel=channel,
        description=f"the plane {name!r} images",
        device=device,
        excitation_lambda=float(meta["excitation_lambda"]),
        indicator=_text(meta["indicator"]),
        location=_text(meta["location"]),
        imaging_rate=float((n - 1) / (times[-1] - times[0])) if n > 1 else 0.0,
    )
    nwb.add_acquisition(_IMAGING[kind](imaging_plane=plane, **common))


def _add_records(nwb: NWBFile, group: Any, name: str, n: int, times: np.ndarray[Any, Any]) -> None:
    module = nwb.processing.get("misc") or nwb.create_processing_module(
        "misc", "per-frame records the pipeline computed (frame stats, motion shifts, traces)"
    )
    values = group["frames"][:n]
    names = [_text(x) for x in group["frames"].attrs.get("field_names", [])]
    units = [_text(x) for x in group["frames"].attrs.get("field_units", [])]
    if values.ndim != 2 or len(names) != values.shape[1]:
        module.add(
            TimeSeries(
                name=name,
                data=values,
                timestamps=times,
                unit="n.a.",
                description=f"records stream {name!r}",
            )
        )
        return
    for k, field in enumerate(names):
        module.add(
            TimeSeries(
                name=f"{name}_{field}",
                data=values[:, k],
                timestamps=times,
                unit=(units[k] if k < len(units) else "") or "n.a.",
                description=f"{field} of records stream {name!r}, per frame",
            )
        )


def _add_ledger(nwb: NWBFile, streams: list[Any], t0: int) -> None:
    rows = []
    for group in streams:
        n = len(group["frame_id"])
        ids = group["frame_id"][:n].astype(np.int64)
        stamps = group["timestamp_ns"][:n].astype(np.int64)
        for entry in group["dropped"][:]:
            first, count = int(entry["first_id"]), int(entry["count"])
            at = int(np.searchsorted(ids, first))
            noted = int(entry["noted_ns"])
            start = int(stamps[at - 1]) if at > 0 else noted
            stop = int(stamps[at]) if at < n else max(start, noted)
            rows.append(
                (
                    max(0.0, (start - t0) / 1e9),
                    max(0.0, (max(stop, start) - t0) / 1e9),
                    group.name.lstrip("/"),
                    first,
                    count,
                    entry["reason"].decode("utf-8", "replace"),
                )
            )
    if not rows:
        return
    # The same span in several streams (a camera and the stats made from it)
    # is one row: nwbinspector takes a table whose start times are all equal
    # for one whose times were never set.
    merged: dict[tuple[float, float, int, int], tuple[list[str], list[str]]] = {}
    for begin, end, stream, first, count, reason in rows:
        streams_, reasons = merged.setdefault((begin, end, first, count), ([], []))
        streams_.append(stream)
        if reason not in reasons:
            reasons.append(reason)
    table = nwb.create_time_intervals(
        "dropped_frames",
        "frames not recorded (rigd's drop ledger): from the last frame before the span "
        "to the first after it; count 0 is an event such as a restart",
    )
    table.add_column("stream", "the stream(s), comma-separated")
    table.add_column("first_id", "the first frame id not recorded")
    table.add_column("count", "how many frames (0: an event)")
    table.add_column("reason", "gap, ring_overrun, restart or write_error")
    for (begin, end, first, count), (names, reasons) in sorted(merged.items()):
        table.add_interval(
            start_time=begin,
            stop_time=end,
            stream=", ".join(names),
            first_id=first,
            count=count,
            reason=", ".join(reasons),
        )
