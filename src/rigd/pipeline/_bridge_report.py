"""A bridge sender's line in the run's summary: what reached the far end.

A sender whose receiver never came, or refused the link (frames of another
shape), discards the frames it cannot send (``BridgeSender._discard``) and
ends as a clean stop; without this line ``rigd run``'s summary said nothing
of it. ``RunReport.actor_lines`` carries it (``_run_end.stop_graceful``).
"""

from __future__ import annotations

__all__ = ["sender_line"]


def sender_line(
    address: str,
    acknowledged: int,
    discarded: int,
    unacknowledged: int,
    down_reason: str | None,
) -> str:
    """``N frame(s) reached the receiver at ADDRESS, M discarded while it was
    down (last down: WHY), K sent and never acknowledged``; each part but the
    first only when it is not 0 (or None)."""
    line = f"{acknowledged} frame(s) reached the receiver at {address}"
    if discarded:
        line += f", {discarded} discarded while it was down"
    if down_reason:
        line += f" (last down: {down_reason})"
    if unacknowledged:
        line += f", {unacknowledged} sent and never acknowledged"
    return line
