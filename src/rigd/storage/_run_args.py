"""The checks of a new run file's arguments, before anything is created.

``RunWriter`` (``_run_writer``) calls ``check_new_run`` first: a bad
stream list, table names, intervals, metadata or compression raise
``ValueError`` with nothing created, and a file already at the path
``FileExistsError`` (rigd never overwrites a run file).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rigd.storage._codecs import Codec, codec
from rigd.storage._h5file import require_filter
from rigd.storage._run_layout import StreamSpec
from rigd.storage._run_metadata import check_metadata

__all__ = ["check_compression", "check_interval", "check_new_run"]


def check_new_run(
    path: Path,
    streams: Sequence[StreamSpec],
    tables: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    flush_interval: float,
    fsync_interval: float,
    write_buffers: int,
) -> tuple[dict[str, Any], dict[str, Codec | None], dict[str, Any]]:
    """Check a new run's arguments and make its directory; returns the
    metadata as stored (``check_metadata``), each stream's codec (None:
    uncompressed) and the tables (name: numpy dtype).

    Raises:
        ValueError: no streams, names not unique, a table named like a
            stream, an interval not positive, bad metadata, a codec whose
            HDF5 filter is missing, ``write_buffers`` < 0.
        FileExistsError: a file is already at ``path``.
    """
    if not streams:
        raise ValueError("a run file needs at least one stream")
    names = [s.name for s in streams]
    if len(set(names)) != len(names):
        raise ValueError(f"stream names must be unique, got {names}")
    checked_tables = dict(tables or {})
    clash = sorted(set(checked_tables) & set(names))
    if clash:
        raise ValueError(f"tables {clash} have the names of streams; name them apart")
    check_interval("flush_interval", flush_interval)
    check_interval("fsync_interval", fsync_interval)
    checked = check_metadata(metadata or {})
    codecs = {s.name: check_compression(s.compression) for s in streams}
    if path.exists():
        raise FileExistsError(
            f"{path} exists; rigd never overwrites a run file. Use a new run id "
            "or a file name template with {time} in it"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if write_buffers < 0:
        raise ValueError(f"write_buffers must be >= 0, got {write_buffers}")
    return checked, codecs, checked_tables


def check_compression(name: Any) -> Codec | None:
    """The codec of a stream's ``compression`` (``None``: uncompressed).

    The rule ``HDF5Recorder``'s option check (``rigd.pipeline``) applies at load.

    Raises:
        ValueError: not ``None``, ``lz4``, ``zstd`` or ``bitshuffle-lz4``
            (``COMPRESSION_CHOICES``'s words).
        RuntimeError: HDF5 has no filter for it (hdf5plugin not installed).
    """
    if name is None:
        return None
    found = codec(name)
    require_filter(found)
    return found


def check_interval(name: str, seconds: Any) -> None:
    """Refuse a ``flush_interval`` or ``fsync_interval`` (``name``) that is not
    a finite number of seconds > 0 (a bool, text, 0, a negative number, NaN,
    infinity).

    Raises:
        ValueError: naming the interval and the value.
    """
    if isinstance(seconds, str):
        raise ValueError(
            f"{name} is a number of seconds > 0, got the text {seconds!r}; write a number "
            "without quotes, e.g. 0.5 (YAML reads 1e-1 as text: write 0.1)"
        )
    if isinstance(seconds, bool) or not isinstance(seconds, int | float | np.integer | np.floating):
        raise ValueError(f"{name} is a number of seconds > 0, got {seconds!r}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ValueError(f"{name} must be a finite number of seconds > 0, got {seconds!r}")
