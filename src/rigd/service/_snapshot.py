"""The status sample the daemon takes twice a second, as typed records.

``GET /v1/status``, ``/metrics``, the health check and the disk watch read
the latest sample; 20 clients polling cost no more than one. The records
are ``TypedDict`` s: the JSON the API serves, with its fields' types.
"""

from __future__ import annotations

from typing import TypedDict

from rigd.pipeline import ActorStatus, PipelineStatus

__all__ = ["LinkSample", "ReaderSample", "Snapshot", "empty_snapshot", "snapshot_of"]


class ReaderSample(TypedDict):
    """One reader of a link: its ``actor.input``, frames read and dropped this run,
    and its wake-up latency after a commit, p50 in microseconds (None before it
    has slept for a frame)."""

    input: str
    read: int
    dropped: int
    latency_p50_us: float | None


class LinkSample(TypedDict):
    """One link (ring): frames written, the rate (frames/s), fill (0-1), its readers,
    and ``skipped``: frames its source dropped because the ring was full (a camera
    is never held back; the run file's ledger has them as ``ring_full``);
    ``dropped_by_reason``: every frame its source dropped, by reason
    (``ring_full`` and the reasons the source noted, e.g. ``incomplete``)."""

    ring: str
    written: int
    rate_hz: float
    fill: float
    readers: list[ReaderSample]
    skipped: int
    dropped_by_reason: dict[str, int]


class Snapshot(TypedDict):
    """The pipeline's actors and links at ``sampled_at`` (ISO 8601 UTC; None before one)."""

    actors: dict[str, ActorStatus]
    links: list[LinkSample]
    sampled_at: str | None


def empty_snapshot() -> Snapshot:
    """No pipeline running: no actors, no links."""
    return {"actors": {}, "links": [], "sampled_at": None}


def snapshot_of(status: PipelineStatus, sampled_at: str) -> Snapshot:
    """``status`` as the API serves it (rates to 0.01 Hz, fill to 1e-4)."""
    return {
        "actors": {name: ActorStatus(**info) for name, info in status.actors.items()},
        "links": [
            {
                "ring": link.ring,
                "written": link.written,
                "rate_hz": round(link.rate_hz, 2),
                "fill": round(link.fill, 4),
                "readers": [
                    {"input": name, "read": read, "dropped": dropped, "latency_p50_us": latency}
                    for (name, read, dropped), latency in zip(
                        link.readers,
                        link.latency_p50_us or (None,) * len(link.readers),
                        strict=True,
                    )
                ],
                "skipped": link.skipped,
                "dropped_by_reason": dict(link.dropped_by_reason),
            }
            for link in status.links
        ],
        "sampled_at": sampled_at,
    }


def frames_written(snapshot: Snapshot) -> int:
    """Frames written into all links: progress, for the watchdog."""
    return sum(link["written"] for link in snapshot["links"])
