"""The recorders' option values, checked once: at planning and by the constructor.

Each rule is here once. Planning calls a recorder class's ``describe_outputs``
(``rigd.pipeline._plan_shapes``), which calls these, so ``rigd run``, ``rigd
check``, ``rigd reprocess`` and the daemon refuse a bad value at load, naming
the pipeline file's line and the option's key (``OptionValueError.option``);
the constructor calls the same functions, so a recorder made in code is
refused the same way. A directory that does not exist yet is created at
start (``RunWriter``); what can be known without creating anything (an
existing file in the way, a filesystem that holds no files) is refused here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from rigd._exceptions import OptionValueError
from rigd.storage import check_compression, check_interval, run_file_path

__all__ = [
    "OptionValueError",
    "check_directory",
    "check_intervals",
    "check_streams",
    "check_template",
    "check_when_behind",
    "check_write_buffers",
]

#: ``when_behind``'s values (``HDF5Recorder``; ``rigd.pipeline._recorder_behind``).
WHEN_BEHIND = ("wait", "drop")


def check_template(template: Any) -> None:
    """Refuse a file name template ``run_file_path`` cannot use.

    Raises:
        OptionValueError: not text, an unknown field (``{foo}``), a field
            with a format spec or conversion (``{run_id:>300}``,
            ``{run_id!r}``), a brace left open (``{run_id``), or a name that
            is empty or a path (``../x_{run_id}.h5``).
    """
    if not isinstance(template, str):
        raise OptionValueError(
            "template", f"template is a file name, e.g. '{{run_id}}.h5', got {template!r}"
        )
    try:
        run_file_path(".", "run", template=template, pipeline="pipeline")
    except ValueError as exc:
        said = str(exc) if repr(template) in str(exc) else f"template {template!r}: {exc}"
        raise OptionValueError(
            "template",
            f"{said}; e.g. '{{date}}_{{time}}_{{pipeline}}_{{run_id}}.h5'",
        ) from None


def check_directory(directory: Any) -> None:
    """Refuse a run file directory that can be known bad without creating anything.

    Refused: not text, empty, or with a NUL byte; a path that starts with ``~``
    (rigd does not expand it: ``~/data`` would be a directory named ``~`` in
    the working directory); an existing path that is not a directory; a
    parent that is a file; a place on a filesystem that holds no files
    (``/proc``, ``/sys``: ``statvfs`` gives no blocks) or is read-only, or
    whose nearest existing directory this process may not write to.
    A directory that is missing but can be made is created at start.

    Raises:
        OptionValueError: the problem, and the fix.
    """
    if (
        not isinstance(directory, (str, os.PathLike))
        or not str(directory)
        or "\0" in str(directory)
    ):
        raise OptionValueError(
            "directory", f"directory is the path of a directory, got {directory!r}"
        )
    if str(directory).startswith("~"):
        raise OptionValueError(
            "directory",
            f"directory {str(directory)!r} starts with ~: give the path without ~: rigd does "
            "not expand it; e.g. /home/you/data",
        )
    try:
        _check_place(str(directory))
    except OptionValueError:
        raise
    except ValueError as exc:  # a NUL byte in the path
        raise OptionValueError("directory", f"directory {directory!r}: {exc}") from None
    except OSError:
        pass  # what cannot be looked at (a place this process may not search): at start


def _check_place(directory: str) -> None:
    path = Path(directory).absolute()
    fix = "give a directory, or a path where one can be created"
    if path.exists() and not path.is_dir():
        raise OptionValueError(
            "directory", f"directory {directory!r} is a file, not a directory; {fix}"
        )
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OptionValueError(
            "directory",
            f"directory {directory!r} cannot be created: {str(existing)!r} is a file; {fix}",
        )
    info = os.statvfs(existing)
    if info.f_blocks == 0 or info.f_flag & os.ST_RDONLY:
        why = "read-only" if info.f_flag & os.ST_RDONLY else "a filesystem that holds no files"
        raise OptionValueError(
            "directory",
            f"directory {directory!r} cannot hold run files: {str(existing)!r} is on {why}; "
            f"{fix} on a disk",
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OptionValueError(
            "directory",
            f"directory {directory!r} cannot be created or written: this process may not "
            f"write to {str(existing)!r}; {fix} where it may write",
        )


def check_when_behind(when_behind: Any) -> None:
    """Refuse a ``when_behind`` other than ``wait`` or ``drop``.

    Raises:
        OptionValueError: naming both values and what each does.
    """
    if when_behind not in WHEN_BEHIND:
        raise OptionValueError(
            "when_behind",
            "when_behind is 'wait' (hold the source back) or 'drop' (drop the oldest "
            f"frames, in the ledger as disk_behind), got {when_behind!r}",
        )


def check_write_buffers(write_buffers: Any) -> None:
    """Refuse a ``write_buffers`` that is not a whole number >= 0.

    Raises:
        OptionValueError: naming the value.
    """
    if isinstance(write_buffers, bool) or not isinstance(write_buffers, int) or write_buffers < 0:
        raise OptionValueError(
            "write_buffers", f"write_buffers is a number of chunks >= 0, got {write_buffers!r}"
        )


def check_intervals(flush_interval: Any, fsync_interval: Any) -> None:
    """Refuse a ``flush_interval`` or ``fsync_interval`` that is not a number of
    seconds > 0 (``RunWriter``'s rule: ``rigd.storage.check_interval``).

    Raises:
        OptionValueError: naming the option and the value.
    """
    for name, seconds in (("flush_interval", flush_interval), ("fsync_interval", fsync_interval)):
        try:
            check_interval(name, seconds)
        except ValueError as exc:
            raise OptionValueError(name, str(exc)) from None


def check_streams(compression: Any, latency_trace: Any) -> None:
    """Refuse a ``compression`` that is not ``None``, ``lz4``, ``zstd`` or
    ``bitshuffle-lz4`` (the codecs' rule: ``rigd.storage.check_compression``;
    in the words of the pipeline file's ``recording:`` block) and a
    ``latency_trace`` that is not ``true`` or ``false``.

    Raises:
        OptionValueError: naming the option, the value and the choices.
    """
    try:
        check_compression(compression)
    except (ValueError, RuntimeError) as exc:
        raise OptionValueError("compression", str(exc)) from None
    if not isinstance(latency_trace, bool):
        raise OptionValueError(
            "latency_trace",
            f"latency_trace is true or false (store each frame's latency to disk), "
            f"got {latency_trace!r}",
        )
