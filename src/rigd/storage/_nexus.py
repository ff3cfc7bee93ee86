"""The NeXus view of a run file: base classes, units, and ``default`` down to the image.

A run file keeps its own paths (``/<stream>/frames``, ``frame_id``, ...; the
layout DESIGN.md fixes) and adds a NeXus entry whose datasets are hard
links to them, so NeXus readers (silx, NeXpy, nexusformat, h5web) find the
image by following ``default`` attributes and nothing is stored twice::

    /                       NX_class=NXroot, default=entry, creator, file_time
    /entry                  NXentry: title, entry_identifier, start_time,
                            end_time (at seal), program_name (@version);
                            default=<first image stream>
    /entry/instrument       NXinstrument
    /entry/instrument/<s>   NXdetector: data -> /<s>/frames,
                            sequence_number -> /<s>/frame_id
    /entry/<s>              NXdata; images: signal=data, axes=[frame_id, ., .];
                            records: one dataset per field, signal=first,
                            auxiliary_signals=the others, axes=[frame_id]

The per-frame records (``frame_id``, ``timestamp_ns``, ``latency_ns``) and
the drop ledger carry ``long_name``/``units``/``description`` attributes.

Works on the h5py objects the run file's modules hand it: ``_h5file``, the
one module that imports h5py, stays the one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rigd.storage._fields import RecordField

__all__ = [
    "ENTRY",
    "NexusData",
    "describe_records",
    "describe_root",
    "field_names",
    "image_like",
    "link_stream",
    "seal_entry",
    "summarise",
]

ENTRY = "entry"
_RECORD_CHUNK = 4096
_LEDGER_DESCRIPTION = (
    "The drop ledger: one row per span of frames that are not in this file. "
    "first_id: the first missing frame id; count: how many (0: an event with no "
    "frame lost, such as a restart note: 'restart of recorder <actor>'); reason: "
    "gap (the source's ids skip), ring_overrun (the ring's writer overwrote them "
    "before the recorder read them), restart (an actor was restarted), "
    "write_error; noted_ns: when the recorder noted it, ns since the Unix epoch (UTC)."
)

#: long_name, units and a description of each per-frame record.
_RECORDS: Mapping[str, tuple[str, str, str]] = {
    "frame_id": ("frame id", "", "The source's id of each frame; ids that skip are in 'dropped'."),
    "timestamp_ns": (
        "acquisition time",
        "ns",
        "When the source acquired each frame, ns since the Unix epoch (UTC).",
    ),
    "latency_ns": (
        "latency to disk",
        "ns",
        "From acquisition to the frame's bytes being in the file, per frame.",
    ),
}


def image_like(shape: Sequence[int]) -> bool:
    """Frames of two or more dimensions are images; one dimension, a record of fields."""
    return len(shape) >= 2


def describe_root(f: Any, *, file_name: str, start_time: str, version: str, hdf5: str) -> None:
    """NXroot's attributes (before SWMR: attributes cannot be added after)."""
    attrs = f.attrs
    attrs["NX_class"] = "NXroot"
    attrs["default"] = ENTRY
    attrs["creator"] = "rigd"
    attrs["creator_version"] = version
    attrs["file_name"] = file_name
    attrs["file_time"] = start_time
    attrs["HDF5_Version"] = hdf5


def make_entry(f: Any, *, run_id: str, start_time: str, version: str, default: str) -> Any:
    """The NXentry and its NXinstrument; returns the entry."""
    entry = f.create_group(ENTRY)
    entry.attrs["NX_class"] = "NXentry"
    entry.attrs["default"] = default
    entry["title"] = run_id
    entry["entry_identifier"] = run_id
    entry["start_time"] = start_time
    entry["program_name"] = "rigd"
    entry["program_name"].attrs["version"] = version
    instrument = entry.create_group("instrument")
    instrument.attrs["NX_class"] = "NXinstrument"
    instrument["name"] = "rigd"
    return entry


def describe_records(group: Any, *, units: str, fields: Sequence[RecordField]) -> None:
    """Attributes on a stream's own datasets: units, long names, the ledger's meaning."""
    frames = group["frames"]
    frames.attrs["units"] = units
    frames.attrs["long_name"] = f"{group.name.lstrip('/')} frames"
    if fields:
        frames.attrs["field_names"] = [f.name for f in fields]
        frames.attrs["field_units"] = [f.units for f in fields]
    else:
        frames.attrs["interpretation"] = "image"
        # NWB's attributes of an ImageSeries' data, so that an NWB export can
        # link these frames rather than copy them (rigd export --nwb).
        frames.attrs["unit"] = units
        frames.attrs["conversion"] = 1.0
        frames.attrs["resolution"] = -1.0
        frames.attrs["offset"] = 0.0
    for name, (long_name, unit, description) in _RECORDS.items():
        if name in group:
            attrs = group[name].attrs
            attrs["long_name"] = long_name
            if unit:
                attrs["units"] = unit
            attrs["description"] = description
    ledger = group["dropped"].attrs
    ledger["long_name"] = "drop ledger"
    ledger["description"] = _LEDGER_DESCRIPTION


def link_stream(entry: Any, group: Any, fields: Sequence[RecordField]) -> dict[str, Any]:
    """A stream's NXdetector (images) and NXdata; returns the field datasets to fill.

    The field datasets are the only new storage (a column of ``frames`` each):
    the recorder appends to them when it appends to ``frame_id``.
    """
    name = group.name.lstrip("/")
    data = entry.create_group(name)
    data.attrs["NX_class"] = "NXdata"
    data["frame_id"] = group["frame_id"]
    data.attrs["frame_id_indices"] = 0
    columns: dict[str, Any] = {}
    if not fields:
        detector = entry["instrument"].create_group(name)
        detector.attrs["NX_class"] = "NXdetector"
        detector["data"] = group["frames"]
        detector["sequence_number"] = group["frame_id"]
        detector["description"] = f"camera stream {name!r} recorded by rigd"
        data["data"] = group["frames"]
        data.attrs["signal"] = "data"
        ndim = len(group["frames"].shape)
        data.attrs["axes"] = ["frame_id", *(["."] * (ndim - 1))]
        return columns
    dtype = group["frames"].dtype
    for field in fields:
        column = data.create_dataset(
            field.name, shape=(0,), maxshape=(None,), chunks=(_RECORD_CHUNK,), dtype=dtype
        )
        column.attrs["long_name"] = field.long_name or field.name
        if field.units:
            column.attrs["units"] = field.units
        columns[field.name] = column
    data.attrs["signal"] = fields[0].name
    if len(fields) > 1:
        data.attrs["auxiliary_signals"] = [f.name for f in fields[1:]]
    data.attrs["axes"] = ["frame_id"]
    return columns


def field_names(group: Any) -> tuple[RecordField, ...]:
    """The fields a stream was recorded with (none in a file from before NeXus)."""
    frames = group["frames"]
    if "field_names" not in frames.attrs:
        return ()
    names = [_text(n) for n in frames.attrs["field_names"]]
    units = [_text(u) for u in frames.attrs.get("field_units", [""] * len(names))]
    return tuple(RecordField(n, u) for n, u in zip(names, units, strict=True))


def field_columns(f: Any, group: Any) -> dict[str, Any]:
    """The field datasets of a stream, if the file has them."""
    name = group.name.lstrip("/")
    path = f"{ENTRY}/{name}"
    if path not in f:
        return {}
    data = f[path]
    return {field.name: data[field.name] for field in field_names(group) if field.name in data}


def seal_entry(f: Any, *, end_time: str) -> None:
    """At seal (no SWMR): the entry's end time."""
    if ENTRY in f and "end_time" not in f[ENTRY]:
        f[ENTRY]["end_time"] = end_time


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class NexusData:
    """One NXdata group of a run file, as ``rigd inspect`` shows it."""

    path: str
    #: The signal's name, then the auxiliary signals (a records stream's fields).
    signals: tuple[str, ...]
    shape: tuple[int, ...]
    units: str
    axes: tuple[str, ...]


def summarise(f: Any) -> tuple[str, tuple[NexusData, ...]] | None:
    """The entry's default plot and its NXdata groups; None in a file without NeXus."""
    if _text(f.attrs.get("NX_class", "")) != "NXroot" or ENTRY not in f:
        return None
    entry = f[ENTRY]
    default = _text(entry.attrs.get("default", ""))
    groups = []
    for name, group in entry.items():
        if _text(group.attrs.get("NX_class", "")) != "NXdata":
            continue
        signal = _text(group.attrs.get("signal", ""))
        aux = [_text(a) for a in group.attrs.get("auxiliary_signals", [])]
        dataset = group[signal]
        axes = tuple(a for a in (_text(x) for x in group.attrs.get("axes", [])) if a != ".")
        groups.append(
            NexusData(
                path=f"/{ENTRY}/{name}",
                signals=(signal, *aux),
                shape=tuple(int(n) for n in dataset.shape),
                units=_text(dataset.attrs.get("units", "")),
                axes=axes,
            )
        )
    return (f"/{ENTRY}/{default}" if default else "", tuple(groups))
