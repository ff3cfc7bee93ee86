"""Dtypes as text, field names included: how plans, rings and run files name them.

numpy's own short form (``dtype.str``) loses a structured dtype's fields: a
record of ``t`` (float64) and ``x`` (int32) becomes ``|V12``. ``dtype_text``
keeps them: a plain dtype is its ``str`` (``<u2``), a structured one JSON in
numpy's dictionary form (``{"names": ["t", "x"], "formats": ["<f8", "<i4"],
"offsets": [0, 8], "itemsize": 12}``), which ``parse_dtype`` turns back into
an equal dtype (field names, offsets and padding; nested records and
sub-arrays too).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["dtype_text", "is_record_dtype", "parse_dtype"]


def is_record_dtype(dtype: Any) -> bool:
    """Whether ``dtype`` is a structured (record) dtype: one with named fields."""
    return parse_dtype(dtype).names is not None


def dtype_text(dtype: Any) -> str:
    """``dtype`` as text that ``parse_dtype`` reads back, fields and all.

    Raises:
        TypeError: ``dtype`` is not a dtype numpy understands.
    """
    dt = parse_dtype(dtype)
    if dt.names is None:
        return dt.str
    return json.dumps(_to_json(dt), separators=(",", ":"))


def parse_dtype(value: Any) -> np.dtype[Any]:
    """A numpy dtype from a dtype, a numpy name (``uint16``, ``<u2``), a
    ``descr`` list, or the JSON text ``dtype_text`` writes.

    Raises:
        TypeError: not a dtype numpy understands.
    """
    if isinstance(value, np.dtype):
        return value
    if isinstance(value, str) and value.lstrip().startswith(("[", "{")):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TypeError(f"dtype {value!r} is not valid JSON: {exc}") from None
    if isinstance(value, list):
        value = _tuplify(value)
    elif isinstance(value, dict) and "names" in value and "formats" in value:
        value = {**value, "formats": [_format(f) for f in value["formats"]]}
    try:
        dtype: np.dtype[Any] = np.dtype(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{value!r} is not a dtype: {exc}") from None
    return dtype


def _to_json(dt: np.dtype[Any]) -> Any:
    if dt.names is not None:
        assert dt.fields is not None
        return {
            "names": list(dt.names),
            "formats": [_to_json(dt.fields[n][0]) for n in dt.names],
            "offsets": [int(dt.fields[n][1]) for n in dt.names],
            "itemsize": dt.itemsize,
        }
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return {"subarray": _to_json(base), "shape": list(shape)}
    return dt.str


def _format(item: Any) -> Any:
    if isinstance(item, dict) and "subarray" in item:
        return (_format(item["subarray"]), tuple(item["shape"]))
    if isinstance(item, dict):
        return parse_dtype(item)
    return item


def _tuplify(descr: list[Any]) -> list[Any]:
    """A descr read from JSON (lists) as numpy wants it (a list of tuples)."""
    fields: list[tuple[Any, ...]] = []
    for item in descr:
        if not isinstance(item, (list, tuple)) or not 2 <= len(item) <= 3:
            raise TypeError(f"a structured dtype's field is [name, dtype(, shape)], got {item!r}")
        name, sub = item[0], item[1]
        if isinstance(sub, list):
            sub = _tuplify(sub)
        if len(item) == 3:
            fields.append((name, sub, tuple(item[2])))
        else:
            fields.append((name, sub))
    return fields
