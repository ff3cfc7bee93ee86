"""A ``rigd run`` whose start failed or was interrupted leaves its run id free.

``rigd run --run-id ID`` refuses an id whose log (``<data dir>/ID.log``)
exists: a run is never recorded over. A start that fails (a port taken, a
camera missing) or is interrupted before any frame is written would use
the id up with nothing in it: its recorders' files, sealed ``aborted`` with
0 frames, and its log. They are removed here, so the retry can take the same
id; a file that holds a frame (or that cannot be read) is kept, and so is
the log beside it. What the start said is on stderr.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path

from rigd.pipeline import RunReport
from rigd.storage import inspect_run

__all__ = ["release_unrecorded"]

log = logging.getLogger(__name__)


def _recorded_nothing(path: str) -> bool:
    """Whether the run file ``path`` is sealed ``aborted`` with 0 frames in every stream."""
    try:
        summary = inspect_run(path)
    except FileNotFoundError:
        return True
    except (OSError, ValueError):
        return False  # not ours to judge: keep it
    return summary.run_state == "aborted" and all(s.frames == 0 for s in summary.streams)


def release_unrecorded(report: RunReport) -> tuple[RunReport, list[str]]:
    """Remove what a start that recorded nothing left: its ``aborted`` 0-frame
    run files and its log file (``report.files``, ``report.log``).

    Returns:
        The report without the removed files and log, and the paths removed
        (none when any file holds a frame: then everything is kept).
    """
    if any(report.frames.values()) or not all(_recorded_nothing(f) for f in report.files):
        return report, []
    removed = []
    for path in [*report.files, *([report.log] if report.log else [])]:
        with contextlib.suppress(FileNotFoundError):
            Path(path).unlink()
            removed.append(path)
    if removed:
        log.debug("removed what the start of run %s left: %s", report.run_id, removed)
    return dataclasses.replace(report, files=(), log=None), removed
