"""What ``rigd inspect`` (and the console's summary link) says of one run file, as text."""

from __future__ import annotations

from rigd.storage import RunSummary

__all__ = ["format_summary"]


def format_summary(summary: RunSummary) -> str:
    """The text ``rigd inspect`` prints for one run file."""
    lines = [
        f"{summary.path}",
        f"  run {summary.run_id}: {summary.run_state}"
        + (f" ({summary.failure})" if summary.failure else "")
        + (
            "; not sealed, and no run writes it: its writer was killed or crashed;"
            f" seal it with `rigd recover {summary.path}`"
            if summary.writer_gone
            else ""
        ),
        f"  started {summary.start_time or '?'}, stopped {summary.stop_time or '-'}"
        f" on {summary.host or '?'} (rigd {summary.rigd_version or '?'})",
    ]
    for s in summary.streams:
        shape = "x".join(str(n) for n in s.shape)
        lines.append(
            f"  stream {s.name}: {s.frames} frames of {shape} {s.dtype}"
            f"{', ' + s.compression if s.compression else ''}, {s.duration_s:.2f} s"
            f" at {s.rate_hz:.1f} Hz"
        )
        if s.first_frame_id is not None:
            lines.append(f"    frame ids {s.first_frame_id}..{s.last_frame_id}")
        gaps = len([entry for entry in s.ledger if entry[1]])
        lines.append(f"    dropped {s.dropped} frame(s) in {gaps} gap(s)")
        for first, count, reason in s.ledger[:10]:
            what = f"ids {first}..{first + count - 1}" if count else f"at id {first}"
            lines.append(f"      {what}: {reason}")
        if len(s.ledger) > 10:
            lines.append(f"      ... {len(s.ledger) - 10} more ledger entries")
        if s.latency_p50_ms is not None:
            lines.append(
                f"    latency to disk p50 {s.latency_p50_ms:.2f} ms, p99 {s.latency_p99_ms:.2f} ms"
            )
    if summary.nexus is None:
        lines.append("  NeXus: none (written before run files carried NeXus)")
    else:
        default, groups = summary.nexus
        lines.append(f"  NeXus: /entry (NXentry), default {default or '-'}")
        for data in groups:
            shape = ", ".join(str(n) for n in data.shape)
            axes = f", axes {', '.join(data.axes)}" if data.axes else ""
            lines.append(
                f"    {data.path} (NXdata): {', '.join(data.signals)} [{shape}]"
                f"{' ' + data.units if data.units else ''}{axes}"
            )
    if summary.metadata:
        lines.append("  metadata:")
        lines.extend(f"    {k} = {v!r}" for k, v in summary.metadata.items())
    return "\n".join(lines)
