"""``GET /v1/runs/{run_id}/export?format=nwb``: a finished run's file as NWB,
with the metadata NWB requires given as ``meta.KEY=VALUE`` query parameters
(as ``rigd export --meta KEY=VALUE``, and ``meta.KEY`` form fields of
``POST /v1/runs``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from fastapi.exceptions import RequestValidationError

from rigd.service._run import meta_value
from rigd.storage import RESERVED_ATTRIBUTES, check_sealed, check_whole, export_nwb

__all__ = ["export_metadata", "export_nwb_file"]

#: The query parameters the export takes besides ``meta.KEY``.
EXPORT_PARAMS = ("format",)


def _query_error(key: str, msg: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("query", key), "msg": msg, "type": "value_error"}])


def export_metadata(params: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """The ``meta.KEY=VALUE`` query parameters as metadata, each value read as
    ``--meta`` reads it (``rigd.service._run.meta_value``: ``23.5`` a number,
    ``"007"`` a string).

    Raises:
        RequestValidationError: (422) an unknown parameter, an empty or reserved
            key, a key with '/', or a key given twice; it names the parameter.
    """
    metadata: dict[str, Any] = {}
    for key, value in params:
        if key in EXPORT_PARAMS:
            continue
        if not key.startswith("meta."):
            raise _query_error(
                key, "unknown query parameter; the export takes format and meta.KEY=VALUE"
            )
        name = key.removeprefix("meta.")
        if not name or "/" in name or "\x00" in name or len(name) > 255:
            raise _query_error(
                key, "a metadata key is 1 to 255 characters without '/' or NUL: meta.KEY=VALUE"
            )
        if name in RESERVED_ATTRIBUTES:
            raise _query_error(key, f"{name!r} is rigd's own attribute; use another key")
        if name in metadata:
            raise _query_error(key, "given twice; give each meta.KEY once")
        metadata[name] = meta_value(value)
    return metadata


def export_nwb_file(run: Path, metadata: dict[str, Any]) -> tuple[Path, bool]:
    """``run`` as a self-contained NWB file (frames copied in); with whether the
    caller removes it once sent.

    Without ``metadata``: ``RUN.nwb`` beside the run, made once (made again if
    the run file is newer). With it: a file of its own beside the run (removed
    once sent), so that one export's metadata never answers another's.

    Raises:
        ValueError: the run file is truncated or not sealed (said as
            ``rigd export`` says it), or the run lacks metadata NWB requires
            (names each field, and how the API gives it).
        OSError: the file cannot be written.
    """
    # The file's own problems first, as they are: what the export then refuses
    # is the metadata's, whose fix over the API is meta.KEY=VALUE.
    check_whole(run)
    check_sealed(run)
    if metadata:
        # A new name (export_nwb refuses to write over a file), hidden, beside the run.
        out = run.parent / f".{run.stem}-{uuid.uuid4().hex[:12]}.nwb"
        _export_or_remove(run, out, metadata)
        return out, True
    out = run.with_suffix(".nwb")
    if out.exists() and out.stat().st_mtime >= run.stat().st_mtime:
        return out, False
    partial = out.with_suffix(".nwb.partial")
    partial.unlink(missing_ok=True)
    _export_or_remove(run, partial, metadata)
    partial.replace(out)
    return out, False


def _export_or_remove(run: Path, out: Path, metadata: dict[str, Any]) -> None:
    """``run`` as NWB at ``out``, frames copied in; ``out`` removed if that fails.

    Raises: ``ValueError`` (metadata NWB requires, said for the API), or what
    the export raised."""
    try:
        export_nwb(run, out, link=False, metadata=metadata or None)
    except ValueError as exc:
        out.unlink(missing_ok=True)
        raise ValueError(f"{exc}; over the API: meta.KEY=VALUE query parameters") from None
    except BaseException:
        out.unlink(missing_ok=True)
        raise
