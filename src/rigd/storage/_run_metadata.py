"""Run metadata and run file names: the rules user input must meet.

``check_metadata`` says what a run's metadata may hold and how it is
stored as root attributes; ``run_file_path`` makes a file name from a
template. Both raise ``ValueError`` naming the problem and the fix, before
anything is created.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import string
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_TEMPLATE = "{date}_{time}_{run_id}.h5"
TEMPLATE_FIELDS = ("run_id", "date", "time", "pipeline")

#: Root attributes rigd writes itself; run metadata may not use these names.
RESERVED_ATTRIBUTES = frozenset(
    {
        "rigd_version",
        "run_id",
        "start_time",
        "stop_time",
        "host",
        "pipeline",
        "run_state",
        "recovered_time",
        # Why a run failed (a reprocessed file's: ``mark_failed``).
        "failure",
        # NeXus's NXroot attributes (_nexus.describe_root).
        "NX_class",
        "default",
        "creator",
        "creator_version",
        "file_name",
        "file_time",
        "HDF5_Version",
    }
)


def run_file_path(
    directory: str | os.PathLike[str],
    run_id: str,
    *,
    template: str = DEFAULT_TEMPLATE,
    pipeline: str = "",
    when: dt.datetime | None = None,
) -> Path:
    """The path of a run's file from a name template.

    Fields: ``{run_id}``, ``{date}`` (YYYYMMDD), ``{time}`` (HHMMSS, UTC) and
    ``{pipeline}``. Values are made safe for a file name.

    Raises:
        ValueError: the template names another field, gives a field a format
            spec or conversion (``{run_id:>300}``, ``{run_id!r}``), or is not
            a file name.
    """
    when = (when or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template)]
    names = [f for f, _, _ in fields if f is not None]
    unknown = sorted({n for n in names if n not in TEMPLATE_FIELDS})
    if unknown:
        raise ValueError(
            f"file name template {template!r} uses unknown field(s) {unknown}; "
            f"use only {{{'}, {'.join(TEMPLATE_FIELDS)}}}"
        )
    for field, spec, conversion in fields:
        if spec or conversion:
            # '{run_id:>300}' names no file a file system takes; '{run_id!r}' adds quotes.
            written = f"{field}{'!' + conversion if conversion else ''}"
            written += f":{spec}" if spec else ""
            raise ValueError(
                f"file name template {template!r}: {{{written}}} has a "
                f"{'format spec' if spec else 'conversion'}, which a file name template does "
                f"not take; write the field alone: {{{field}}}"
            )
    values = {
        "run_id": _safe(run_id),
        "date": when.strftime("%Y%m%d"),
        "time": when.strftime("%H%M%S"),
        "pipeline": _safe(pipeline) or "pipeline",
    }
    name = template.format(**values)
    if "/" in name or name in ("", ".", ".."):
        raise ValueError(f"file name template {template!r} must give a file name, not a path")
    if not name.endswith((".h5", ".hdf5")):
        name += ".h5"
    return Path(directory) / name


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text)).strip(".")


def utc_now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


#: Limits on run metadata: a key's length, a stored value's length, and all of it.
MAX_METADATA_KEY = 255
MAX_METADATA_VALUE = 16384
MAX_METADATA_TOTAL = 65536


def check_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Run metadata as it will be stored.

    Strings, numbers and bools are stored as they are, lists of numbers as
    arrays; anything else JSON can hold (a nested mapping such as
    ``{"mouse": {"id": "M12"}}``, a list of strings) is stored as its JSON
    text, which ``json.loads`` reads back.

    Raises:
        ValueError: naming the key: a key that is empty, has '/' or a NUL, is
            longer than 255 characters or is one of rigd's own attributes; a
            string with a NUL; a number that is not finite (inf, nan); a value
            JSON cannot hold, or longer than 16 KiB
            once stored; more than 64 KiB of metadata in all.
    """
    checked: dict[str, Any] = {}
    total = 0
    for key, value in metadata.items():
        if not isinstance(key, str) or not key or "/" in key or "\0" in key:
            raise ValueError(f"metadata key {key!r} must be a non-empty string without '/' or NUL")
        if not _encodable(key):
            raise ValueError(f"metadata key {key!r} is not valid UTF-8 text (a lone surrogate)")
        if len(key) > MAX_METADATA_KEY:
            raise ValueError(
                f"metadata key {key[:40]!r}... is {len(key)} characters; keys are at most "
                f"{MAX_METADATA_KEY}"
            )
        if key in RESERVED_ATTRIBUTES:
            raise ValueError(
                f"metadata key {key!r} is reserved for rigd's own run attributes; rename it"
            )
        if isinstance(value, str):
            if "\0" in value:
                raise ValueError(
                    f"metadata {key!r}: the string holds a NUL character, which HDF5 cannot "
                    "store; remove it"
                )
            if not _encodable(value):
                raise ValueError(f"metadata {key!r} is not valid UTF-8 text (a lone surrogate)")
            stored: Any = value
            size = len(value.encode())
        elif isinstance(value, bool | int | float | np.generic):
            if (
                isinstance(value, int)
                and not isinstance(value, bool)
                and not (-(2**63) <= value < 2**64)
            ):
                raise ValueError(
                    f"metadata {key!r} = {value}: integers are stored as 64-bit; send it "
                    "as a string"
                )
            if isinstance(value, float | np.floating) and not math.isfinite(value):
                raise ValueError(
                    f"metadata {key!r} = {value}: not a finite number, which JSON (the "
                    "status, events and journal) cannot hold; send a number or a string"
                )
            stored, size = value, 8
        elif (
            isinstance(value, Sequence)
            and value
            and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            try:
                stored = np.asarray(value)
            except OverflowError:
                stored = None
            if stored is None or stored.dtype == object:
                raise ValueError(f"metadata {key!r}: a list of numbers that fit 64 bits")
            if stored.dtype.kind == "f" and not np.all(np.isfinite(stored)):
                raise ValueError(
                    f"metadata {key!r}: a list holding a number that is not finite (inf, "
                    "nan), which JSON cannot hold; send finite numbers"
                )
            size = stored.nbytes
        else:
            try:
                stored = json.dumps(value, allow_nan=False, ensure_ascii=False)
            except (TypeError, ValueError) as exc:
                raise ValueError(
                    f"metadata {key!r} = {value!r:.80}: an attribute holds a string, a number, "
                    f"a bool, a list of numbers, or JSON ({exc}); convert it"
                ) from None
            if not _encodable(stored):
                raise ValueError(f"metadata {key!r} is not valid UTF-8 text (a lone surrogate)")
            size = len(stored.encode())
        if size > MAX_METADATA_VALUE:
            raise ValueError(
                f"metadata {key!r} is {size} bytes stored; a value is at most "
                f"{MAX_METADATA_VALUE} (store large data as a file or a stream)"
            )
        total += size + len(key)
        if total > MAX_METADATA_TOTAL:
            raise ValueError(
                f"the run's metadata is over {MAX_METADATA_TOTAL} bytes at {key!r}; send less"
            )
        checked[key] = stored
    return checked


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
