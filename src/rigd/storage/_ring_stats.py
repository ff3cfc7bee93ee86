"""A ring's counters, read from its segment by any attached process."""

from __future__ import annotations

from dataclasses import dataclass

from rigd.storage._ring_layout import SAMPLES, ReaderPolicy, ReaderState
from rigd.storage._ring_segment import RingSegment


@dataclass(frozen=True, slots=True)
class ReaderStatistics:
    """One reader's counters, as read from the ring."""

    index: int
    policy: ReaderPolicy
    pid: int
    alive: bool
    frames_read: int
    frames_dropped: int
    frames_torn: int
    lag: int
    wake_latency_p50_us: float | None
    wake_latency_p99_us: float | None


@dataclass(frozen=True, slots=True)
class RingStatistics:
    """A ring's counters at one moment (see ``FrameRing.statistics``)."""

    name: str
    slot_count: int
    frames_written: int
    fill: float
    writer_wait_s: float
    writer_waits: int
    readers_lost: int
    closed: bool
    readers: tuple[ReaderStatistics, ...]
    #: Frames the writer dropped because the ring was full (``RingWriter.skip``).
    frames_skipped: int = 0


def read_statistics(segment: RingSegment) -> RingStatistics:
    """The counters of ``segment``'s ring and of each of its readers, now.

    ``fill`` is the share of the slots the slowest live lossless reader
    has yet to release; wake-up percentiles come from each reader's last
    64 wake-ups (None before the first).
    """
    segment.check_open()
    hdr = segment.hdr
    head = int(hdr.head)
    readers = []
    lossless_cursors = []
    for index, rec in enumerate(segment.readers):
        if rec.state == ReaderState.FREE:
            continue
        policy = ReaderPolicy(rec.policy)
        alive = rec.state == ReaderState.ACTIVE
        if alive and policy is ReaderPolicy.LOSSLESS:
            lossless_cursors.append(int(rec.cursor))
        n = min(int(rec.wakes), SAMPLES)
        samples = sorted(rec.samples[i] for i in range(n))
        readers.append(
            ReaderStatistics(
                index=index,
                policy=policy,
                pid=int(rec.pid),
                alive=alive,
                frames_read=int(rec.frames_read),
                frames_dropped=int(rec.frames_dropped),
                frames_torn=int(rec.frames_torn),
                lag=head - int(rec.cursor),
                wake_latency_p50_us=samples[n // 2] / 1e3 if n else None,
                wake_latency_p99_us=samples[min(n - 1, int(n * 0.99))] / 1e3 if n else None,
            )
        )
    fill = (head - min(lossless_cursors)) / segment.slot_count if lossless_cursors else 0.0
    return RingStatistics(
        name=segment.name,
        slot_count=segment.slot_count,
        frames_written=head,
        fill=fill,
        writer_wait_s=hdr.writer_wait_ns / 1e9,
        writer_waits=int(hdr.writer_waits),
        readers_lost=int(hdr.readers_lost),
        closed=bool(hdr.closed),
        readers=tuple(readers),
        frames_skipped=int(hdr.writer_skips),
    )
