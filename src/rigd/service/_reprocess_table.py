"""``rigd reprocess``'s summary table: one row per run file, in the order given.

The first column is the run file's name, capped at ``FILE_COLUMN`` characters
(a longer one elided in its middle, so its start and its end, which tell runs
apart, stay): one long name must not widen the column for every row. The
progress lines above the table (``[done/total] PATH: state``) keep each
file's full path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rigd.service._reprocess import FileResult

__all__ = ["FILE_COLUMN", "elide", "table"]

#: The most characters the table's file column takes.
FILE_COLUMN = 60


def elide(text: str, width: int = FILE_COLUMN) -> str:
    """``text`` if it fits ``width`` characters, else its start and end around ``...``."""
    if len(text) <= width:
        return text
    tail = (width - 3) // 2
    return f"{text[: width - 3 - tail]}...{text[-tail:]}"


def table(results: Sequence[FileResult]) -> str:
    """The summary table: file, state, frames, seconds, then the outputs or the error.

    ``frames`` is the frames its outputs hold, every stream's added up (a run
    of 843 frames with two recorded streams: 1686); the header says so."""
    rows = [("file", "state", "frames (all streams)", "seconds", "output / error")]
    for r in results:
        rows.append(
            (
                elide(Path(r.file).name),
                r.state,
                str(r.frames),
                f"{r.seconds:.1f}",
                (", ".join(r.outputs) or r.output or r.error or "")
                + (f"  WARNING: {r.warning}" if r.warning else ""),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    )
