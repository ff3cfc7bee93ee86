"""``rigd run``'s lines: the live progress line and the summary at the end."""

from __future__ import annotations

from collections.abc import Sequence

from rigd.pipeline import PipelineStatus, RunReport

__all__ = ["format_progress", "format_report"]


def format_progress(status: PipelineStatus) -> str:
    """One line: elapsed time, then per link frames, rate, drops and ring fill."""
    parts = [f"{status.elapsed_s:6.1f} s"]
    for link in status.links:
        dropped = sum(d for _, _, d in link.readers) + link.skipped
        full = f" ({link.skipped} ring full)" if link.skipped else ""
        parts.append(
            f"{link.ring}: {link.written} frames {link.rate_hz:6.1f}/s drops {dropped}{full}"
            f" fill {link.fill:4.0%}"
        )
    restarts = sum(a.get("restarts", 0) for a in status.actors.values())
    if restarts:
        parts.append(f"restarts {restarts}")
    return " | ".join(parts)


def format_report(report: RunReport, *, forced: bool = False, recorders: Sequence[str] = ()) -> str:
    """``rigd run``'s summary of ``report``; ``forced``: the stop was forced (Ctrl-C
    twice, or one during the start), which the first line says: the frames and
    drops are then what the repaired files hold (their drop ledgers;
    ``pipeline._run_status.recorded``); files repaired only where there are
    some. ``recorders``: the pipeline's recorders (``Plan.recorders``), for a
    run that ended before they opened a file: then nothing was recorded,
    rather than the pipeline records nothing."""
    how = ""
    if forced:
        how = (
            " (forced: actors killed, run files repaired)"
            if report.files
            else " (forced: actors killed)"
        )
    lines = [f"run {report.run_id}: {report.state} after {report.duration_s:.1f} s{how}"]
    if report.failure:
        lines.append(f"  failure: {report.failure}")
    for stream, frames in report.frames.items():
        lines.append(
            f"  {stream}: {frames} frames recorded, {report.dropped.get(stream, 0)} dropped"
        )
    for name, count in report.restarts.items():
        if count:
            lines.append(f"  actor {name} restarted {count} time(s)")
    for name, line in report.actor_lines.items():
        lines.append(f"  actor {name}: {line}")
    for path in report.files:
        lines.append(f"  file: {path}")
    if report.log:
        lines.append(f"  log: {report.log}")
    if not report.files:  # a start that recorded nothing left no file (``_run_unused``)
        lines.append(_no_file(report, recorders))
    return "\n".join(lines)


def _no_file(report: RunReport, recorders: Sequence[str]) -> str:
    """Why a run left no file: ``format_report``'s last line."""
    if report.frames:
        return "  (no file kept: nothing was recorded)"
    if not recorders:
        return "  (this pipeline records nothing)"
    names = ", ".join(repr(name) for name in recorders)
    which = (
        f"recorder {names} opened its file"
        if len(recorders) == 1
        else f"recorders {names} opened their files"
    )
    return f"  (nothing was recorded: the start ended before {which})"
