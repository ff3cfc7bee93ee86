"""What a run reports: its actors and links now (a status), and what it did (a report).

``PipelineStatus`` is a sample, cheap to take (the head's actor table and
each ring's counters); ``RunReport`` is made once, when the run is torn down,
from what each recorder reported (its files, frames and drops per stream).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

from rigd._exceptions import RigdError
from rigd.pipeline._pause import PauseSpan
from rigd.pipeline._plan import Plan
from rigd.pipeline._state import RunState
from rigd.storage import OWN_IDS, FrameRing, inspect_run, recover_run, wait_writer_gone

__all__ = ["ActorStatus", "LinkRates", "LinkStatus", "PipelineStatus", "RunReport", "recorded"]

#: How long a repair waits for a killed recorder's process to let go of its file.
_WRITER_EXIT_S = 10.0


class ActorStatus(TypedDict):
    """One actor of a run, as the head knows it: ``alive``, ``restarting`` or ``dead``."""

    state: str
    pid: int | None
    restarts: int


@dataclass(frozen=True)
class LinkStatus:
    """One ring: frames written, and per reader what it read and dropped."""

    ring: str
    written: int
    fill: float
    readers: tuple[tuple[str, int, int], ...]  # (actor.input, read, dropped)
    rate_hz: float
    #: Per reader, in the order of ``readers``: its wake-up latency after a
    #: commit, p50 in microseconds (None before it has slept for a frame).
    latency_p50_us: tuple[float | None, ...] = ()
    #: Frames the source dropped because this ring was full (reason ``ring_full``).
    skipped: int = 0
    #: Every frame the source dropped so far, by reason: ``ring_full`` (``skipped``)
    #: and the reasons of its drop notes (a camera's ``incomplete``, ``underrun``,
    #: ``timeout``...; ``_ring_notes``). Notes overwritten before a sample read
    #: them (over 64 between two samples) are counted under ``unknown``, one each.
    dropped_by_reason: Mapping[str, int] = field(default_factory=dict)
    #: Its writer ended the stream (a source that finished: ``n_frames`` taken, a file played).
    closed: bool = False


@dataclass(frozen=True)
class PipelineStatus:
    """A run now: its state, each actor, each link (a sample, cheap to take)."""

    state: RunState  # created, ready (loaded), running, stopping, stopped, failed
    run_id: str
    actors: Mapping[str, ActorStatus]
    links: tuple[LinkStatus, ...]
    elapsed_s: float
    failure: str | None = None


@dataclass(frozen=True)
class RunReport:
    """What a run did: its files, frames recorded and dropped per stream."""

    run_id: str
    state: RunState  # stopped or failed
    duration_s: float
    files: tuple[str, ...]
    frames: Mapping[str, int]
    dropped: Mapping[str, int]
    restarts: Mapping[str, int]
    failure: str | None = None
    recordings: tuple[Mapping[str, Any], ...] = field(default=())
    #: The run's log file (every actor's lines), or None when it has none.
    log: str | None = None
    #: The last ``run_step`` error of each actor that gave up, by name.
    last_errors: Mapping[str, str] = field(default_factory=dict)
    #: The run's pauses, in order.
    pauses: tuple[PauseSpan, ...] = ()
    #: A line from each actor that has one for the run's summary (its
    #: ``report_line()`` after it stopped: a ``ZmqSource``'s rejected messages), by name.
    actor_lines: Mapping[str, str] = field(default_factory=dict)


class LinkRates:
    """Each link's status from its ring's counters, with the rate since the last sample."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self._last_counts: dict[str, tuple[float, int]] = {}
        #: Per ring: the drop notes read so far, and the frames they dropped by reason.
        self._note_cursors: dict[str, int] = {}
        self._noted: dict[str, dict[str, int]] = {}
        # Sampled from several threads (the daemon's monitor, requests): one at a time.
        self._lock = threading.Lock()

    def sample(
        self,
        rings: Mapping[str, FrameRing],
        pids: Mapping[str, int | None],
        since: float | None = None,
    ) -> tuple[LinkStatus, ...]:
        """Every link whose ring is open; ``pids``: each actor's process, to name
        readers; ``since``: when the run began (``time.monotonic``), for the first
        sample's rate (the mean since then, not 0)."""
        with self._lock:
            return self._sample(rings, pids, since)

    def _sample(
        self, rings: Mapping[str, FrameRing], pids: Mapping[str, int | None], since: float | None
    ) -> tuple[LinkStatus, ...]:
        links = []
        now = time.monotonic()
        for ring_plan in self.plan.rings:
            ring = rings.get(ring_plan.name)
            if ring is None:
                continue
            try:
                stats = ring.statistics()
            except RigdError:
                continue
            previous = self._last_counts.get(ring_plan.name)
            if previous is None and since is not None:
                previous = (since, 0)
            rate = 0.0
            if previous is not None and now > previous[0]:
                rate = (stats.frames_written - previous[1]) / (now - previous[0])
            self._last_counts[ring_plan.name] = (now, stats.frames_written)
            # Readers attach in any order: match them to actors by pid.
            names = {pid: name for name, pid in pids.items() if pid}
            inputs = {actor: f"{actor}.{inp}" for actor, inp, _, _ in ring_plan.readers}
            # A reader in this process is the console's live view (service._preview).
            own = os.getpid()
            readers = tuple(
                (
                    inputs.get(names.get(r.pid, ""), "preview" if r.pid == own else f"pid {r.pid}"),
                    r.frames_read,
                    r.frames_dropped,
                )
                for r in stats.readers
            )
            latency = tuple(r.wake_latency_p50_us for r in stats.readers)
            by_reason = self._drops_by_reason(ring_plan.name, ring, stats.frames_skipped)
            links.append(
                LinkStatus(
                    ring_plan.name,
                    stats.frames_written,
                    stats.fill,
                    readers,
                    rate,
                    latency,
                    stats.frames_skipped,
                    by_reason,
                    stats.closed,
                )
            )
        return tuple(links)

    def _drops_by_reason(self, name: str, ring: FrameRing, skipped: int) -> dict[str, int]:
        """The frames the ring's source dropped, by reason: its notes read since the
        last sample, added up. ``ring_full`` is the larger of the notes' count and
        the ring's counter (``RingWriter.skip`` counts at once and notes later;
        a source may note ``ring_full`` itself)."""
        noted = self._noted.setdefault(name, {})
        try:
            notes, cursor, lost = ring.drop_notes(self._note_cursors.get(name, 0))
        except RigdError:
            notes, cursor, lost = [], self._note_cursors.get(name, 0), 0
        self._note_cursors[name] = cursor
        for note in notes:
            if note.reason != OWN_IDS:  # a marker, not a drop
                noted[note.reason] = noted.get(note.reason, 0) + note.count
        if lost:
            noted["unknown"] = noted.get("unknown", 0) + lost
        by_reason = dict(noted)
        ring_full = max(skipped, noted.get("ring_full", 0))
        if ring_full:
            by_reason["ring_full"] = ring_full
        return by_reason


def recorded(
    recordings: Iterable[Mapping[str, Any]], *, repair: bool, run_state: str = "recovered"
) -> tuple[list[str], dict[str, int], dict[str, int]]:
    """The files, frames and drops per stream of the recorders' last reports.

    A file not sealed (or every file, with ``repair``: a forced stop) is
    repaired first, and its frames and drops are what the repaired file holds
    (its streams and drop ledger, read back: its killed recorder's last report
    is older than both).
    """
    files: list[str] = []
    frames: dict[str, int] = {}
    dropped: dict[str, int] = {}
    for recording in recordings:
        path = recording.get("path")
        if not path:
            continue
        files.append(path)
        if repair or recording.get("state") != "complete":
            with contextlib.suppress(Exception):
                # Its recorder was just killed: its process lets go of the file
                # as it exits (recover_run refuses a file a live writer holds).
                wait_writer_gone(path, _WRITER_EXIT_S)
                report = recover_run(path, run_state=run_state)
                recording = {**recording, "frames": dict(report.frames)}
                ledger = {s.name: s.dropped for s in inspect_run(path).streams}
                recording["dropped"] = ledger
        frames.update(recording.get("frames", {}))
        dropped.update(recording.get("dropped", {}))
    return files, frames, dropped
