"""``rigd reprocess``: each file's outputs, in its row: whether they can be written
(checked before any file is replayed), and the frames a kept one holds.

A failed, interrupted or timed-out replay keeps what it wrote (sealed, marked
``run_state: failed``: ``rigd.pipeline.replay_file``); its row counts the
frames in those files (``rigd.storage.inspect_run``, per stream) instead of
showing 0. A file refused before its replay began (``cannot_write``: an output
there already, from an earlier job) counts 0: those outputs are not this job's;
so does one whose names another job, at the same time, took first
(``own_outputs``: each replay's id is in the files it made).
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["cannot_write", "kept_frames", "own_outputs", "taken_meanwhile", "with_kept_frames"]


def own_outputs(targets: Iterable[Path], job: str) -> list[Path]:
    """The files of ``targets`` that the replay ``job`` made (``rigd.storage.made_by``),
    not another job's of the same name; a missing or unreadable one is left out."""
    from rigd.storage import made_by

    return [t for t in targets if made_by(t, job)]


def kept_frames(outputs: Iterable[str | os.PathLike[str]]) -> int:
    """Frames recorded in the existing files of ``outputs`` (all streams added up).

    A file that is missing here (written on another node) or cannot be read
    (left unsealed by a worker that died) counts 0; nothing is raised.
    """
    from rigd.storage import inspect_run

    total = 0
    for path in outputs:
        with contextlib.suppress(OSError, ValueError, KeyError):
            if os.path.exists(path):
                total += sum(s.frames for s in inspect_run(path).streams)
    return total


def with_kept_frames(
    row: dict[str, Any], outputs: Iterable[str | os.PathLike[str]]
) -> dict[str, Any]:
    """``row`` (a ``FileResult``'s fields) with ``frames`` counted in its kept
    ``outputs`` when it did not finish (not ``done``) and says 0."""
    if row.get("state") == "done" or row.get("frames"):
        return row
    return {**row, "frames": kept_frames(outputs)}


def cannot_write(targets: Sequence[Path], path: str) -> str | None:
    """Why the outputs ``targets`` of run file ``path`` cannot be written; None if they can."""
    for target in targets:
        try:
            if not target.parent.exists():  # --out is made later: its file system says
                _check_name_length(target)
            if target.exists():
                return (
                    f"FileExistsError: {target} exists; a run file is never overwritten "
                    "(choose another --out, or move it)"
                )
        except OSError as exc:  # a name too long, a directory that cannot be searched
            if exc.errno == errno.ENAMETOOLONG:
                return (
                    f"OSError: [Errno {exc.errno}] {exc.strerror}: the output {target.name!r} "
                    f"({len(os.fsencode(target.name))} bytes) is longer than the file system "
                    f"takes; give {Path(path).name!r} a shorter name (or link it under one) "
                    "and reprocess it"
                )
            return f"{type(exc).__name__}: {exc}"
    return None


def taken_meanwhile(row: dict[str, Any], targets: Sequence[Path]) -> dict[str, Any]:
    """``row`` (a ``FileResult``'s fields) of a replay whose output another job
    made first, between the replay's check and its recorder's start (two
    ``rigd reprocess`` into one --out at once), worded as ``cannot_write``'s
    row: the recorder's own refusal names a run id and a recording template,
    which ``rigd reprocess`` takes neither of. Any other row as it is."""
    error = row.get("error") or ""
    if row.get("state") != "failed" or not (
        error.startswith("FileExistsError") or "exists already" in error
    ):
        return row
    said = cannot_write(targets, str(row.get("file")))
    return {**row, "error": said} if said and said.startswith("FileExistsError") else row


def _check_name_length(target: Path) -> None:
    """Raise ``ENAMETOOLONG`` as ``stat`` would, for a ``target`` whose directory is
    not made yet: its name against the nearest existing directory's ``NAME_MAX``."""
    there = target.parent
    while not there.exists() and there != there.parent:
        there = there.parent
    if len(os.fsencode(target.name)) > os.pathconf(there, "PC_NAME_MAX"):
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), str(target))
