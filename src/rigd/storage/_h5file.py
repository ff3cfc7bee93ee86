"""The one module of rigd that imports h5py (and hdf5plugin, which registers
the compression filters with HDF5): run files opened, created and laid out.

Everything else in ``storage`` works on the h5py objects this module hands
out (files, groups, datasets), typed ``Any`` there.
"""

from __future__ import annotations

import os
from typing import Any

import h5py

try:
    import hdf5plugin  # noqa: F401 - registers the compression filters with HDF5
except ImportError:  # a dependency, but raw files need none: require_filter says so
    pass
import numpy as np

from rigd.storage._codecs import Codec
from rigd.storage._direct_io import ALIGN
from rigd.storage._run_layout import (
    LEDGER_DTYPE,
    LIBVER,
    MESSAGE_CHUNK,
    RECORD_CHUNK,
    StreamSpec,
)
from rigd.storage._superblock import read_superblock

#: HDF5's file-space alignment for run files being written (see ``create_file``).
ALIGNMENT = {"alignment_threshold": 64 * 1024, "alignment_interval": ALIGN}

#: The HDF5 library h5py runs on, as NeXus's root attribute records it.
HDF5_VERSION: str = h5py.version.hdf5_version


def create_file(path: str | os.PathLike[str]) -> Any:
    """Create a run file in HDF5 1.10's format; FileExistsError if one is there.

    Objects of 64 KiB or more (raw chunks) start on 4 KiB boundaries
    (``H5Pset_alignment``), so their bytes can be written with O_DIRECT
    (``_direct_io``).
    """
    return h5py.File(path, "x", libver=LIBVER, **ALIGNMENT)


def open_file(
    path: str | os.PathLike[str], mode: str, *, run_format: bool = False, locking: bool = True
) -> Any:
    """Open a run file, not live: ``"r"`` to read, ``"r+"`` to change it.

    ``run_format``: new objects in HDF5 1.10's format (a writer resuming a
    run); ``locking=False``: without HDF5's file lock (sealing a run that a
    SWMR reader holds open).
    """
    options: dict[str, Any] = {}
    if run_format:
        options["libver"] = LIBVER
        options.update(ALIGNMENT)
    if not locking:
        options["locking"] = False
    return h5py.File(path, mode, **options)


def open_file_object(fileobj: Any) -> Any:
    """Open a file object read-only (h5py's ``fileobj`` driver; ``_repair_view``)."""
    return h5py.File(fileobj, "r")


def open_for_reading(path: str | os.PathLike[str]) -> Any:
    """Open a run file read-only, live (SWMR read) when a writer has it open."""
    if read_superblock(path).open_for_write:
        return h5py.File(path, "r", libver=LIBVER, swmr=True)
    return h5py.File(path, "r")


def relink_external(path: str | os.PathLike[str], target: str, filename: str) -> int:
    """Make every external link of the file at ``path`` that resolves to the
    file ``target`` name it as ``filename`` instead; returns how many.

    HDF5 resolves a relative ``filename`` against the linking file's own
    directory (then the working directory); an absolute one that is gone, by
    its base name beside the linking file (``H5Lcreate_external``).
    """
    here = os.path.dirname(os.path.abspath(path))
    wanted = os.path.realpath(target)
    changed = 0
    with h5py.File(path, "r+") as f:
        groups = [f]
        while groups:
            group = groups.pop()
            for name in list(group):
                link = group.get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    where = os.path.join(here, link.filename)
                    if os.path.realpath(where) == wanted and link.filename != filename:
                        del group[name]
                        group[name] = h5py.ExternalLink(filename, link.path)
                        changed += 1
                elif isinstance(link, h5py.HardLink) and isinstance(group[name], h5py.Group):
                    groups.append(group[name])
    return changed


def attr_str(attrs: Any, key: str, default: str = "") -> str:
    """An attribute as text (h5py gives bytes for some strings)."""
    value = attrs.get(key, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def stream_groups(f: Any) -> list[Any]:
    """The groups of ``f`` that are recorded streams."""
    return [
        g for g in f.values() if isinstance(g, h5py.Group) and "frames" in g and "frame_id" in g
    ]


def table_datasets(f: Any) -> dict[str, Any]:
    """The root datasets of ``f`` that are a recorder's tables (attr ``rigd_table``)."""
    return {
        name: item
        for name, item in f.items()
        if isinstance(item, h5py.Dataset) and "rigd_table" in item.attrs
    }


def require_filter(codec_: Codec) -> None:
    """Raise ``RuntimeError`` now, before anything is created, if HDF5 has no
    filter to write ``codec_``'s chunks (hdf5plugin registers them)."""
    if not h5py.h5z.filter_avail(codec_.filter_id):
        raise RuntimeError(
            f"compressed recording ({codec_.name}) needs HDF5 filter {codec_.filter_id}, "
            "which hdf5plugin registers; install it with `pip install hdf5plugin`"
        )


def create_table(f: Any, name: str, dtype: Any) -> Any:
    """A root table of rows of ``dtype``, growing by 64-row chunks."""
    dataset = f.create_dataset(
        name, shape=(0,), maxshape=(None,), chunks=(64,), dtype=np.dtype(dtype)
    )
    dataset.attrs["rigd_table"] = 1
    return dataset


def chunk_offset(frames: Any, first: int) -> int | None:
    """Where in the file the chunk holding frame ``first`` lives (None: not allocated)."""
    info = frames.id.get_chunk_info_by_coord((first, *(0,) * (frames.ndim - 1)))
    return None if info.byte_offset is None else int(info.byte_offset)


def raw_chunks(frames: Any) -> tuple[int, int] | None:
    """``(file descriptor, frames per chunk)`` when the ``frames`` dataset's frames
    can be read straight from the file at their chunk's offset (``chunk_offset``):
    chunks of whole frames, no filter, a file on HDF5's default (``sec2``)
    driver, as ``RunWriter`` lays out raw streams. None otherwise (compressed,
    contiguous, virtual or external data): HDF5 reads those."""
    try:
        if frames.file.driver != "sec2":
            return None
        dcpl = frames.id.get_create_plist()
        if dcpl.get_layout() != h5py.h5d.CHUNKED or dcpl.get_nfilters():
            return None
        chunk = tuple(dcpl.get_chunk())
        if chunk[1:] != tuple(frames.shape[1:]):
            return None
        return int(frames.file.id.get_vfd_handle()), int(chunk[0])
    except (OSError, ValueError, RuntimeError):
        return None


def create_stream_group(f: Any, spec: StreamSpec, codec_: Codec | None) -> Any:
    """A stream's group: ``frames``, its per-frame records and its drop ledger."""
    group = f.create_group(spec.name)
    k = spec.frames_per_chunk
    if codec_ is not None:
        frames = group.create_dataset(
            "frames",
            shape=(0, *spec.shape),
            maxshape=(None, *spec.shape),
            chunks=(k, *spec.shape),
            dtype=spec.dtype,
            compression=codec_.filter_id,
            compression_opts=codec_.filter_options,
        )
        frames.attrs["compression"] = codec_.name
    else:
        # Raw chunks get their file space when the extent grows (early
        # allocation, no fill), so their bytes can be written with a
        # plain pwrite, outside HDF5 and its hold on the GIL.
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_chunk((k, *spec.shape))
        dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
        space = h5py.h5s.create_simple((0, *spec.shape), (h5py.h5s.UNLIMITED, *spec.shape))
        h5py.h5d.create(
            group.id, b"frames", h5py.h5t.py_create(spec.dtype), space, dcpl=dcpl
        ).close()
    records = {"frame_id": "<u8", "timestamp_ns": "<i8"}
    if spec.latency_trace:
        records["latency_ns"] = "<i8"
    for name, record_dtype in records.items():
        group.create_dataset(
            name, shape=(0,), maxshape=(None,), chunks=(RECORD_CHUNK,), dtype=record_dtype
        )
    group.create_dataset("dropped", shape=(0,), maxshape=(None,), chunks=(256,), dtype=LEDGER_DTYPE)
    group.attrs["rigd_kind"] = spec.kind
    if spec.kind == "messages":
        group.create_dataset(
            "message_bytes", shape=(0,), maxshape=(None,), chunks=(MESSAGE_CHUNK,), dtype=np.uint8
        )
    return group
