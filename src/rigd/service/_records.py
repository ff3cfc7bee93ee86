"""The daemon's vocabulary: its states and their transitions, a run's record, its errors.

The daemon's states and the moves the REST API may ask for::

    idle --load--> loaded --start--> running --stop--> stopping --> loaded
                     ^  \\                 \\ (sources end) ------------^
                     |   load (another pipeline)
    failed <-- a run that failed to start or failed while running
    failed --load/start--> (as from loaded)

``paused``: a run paused (``Daemon.pause_run``), back to running on a
resume or at the pause's limit, or on to stopping. A run's own states are
:class:`rigd.pipeline.RunState`'s.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import enum
from collections.abc import Container, Mapping
from typing import Any

from rigd._exceptions import InsufficientStorageError, NotFoundError, TransitionError
from rigd.pipeline import ACTIVE_RUN_STATES, RUN_TRANSITIONS, RunState, check_transition

__all__ = [
    "BUSY_STATES",
    "DAEMON_TRANSITIONS",
    "DaemonState",
    "InsufficientStorageError",
    "NotFoundError",
    "RunRecord",
    "TransitionError",
    "check_daemon_transition",
    "new_run_id",
]


class DaemonState(enum.StrEnum):
    """The daemon's state: its pipeline, and whether a run of it is under way."""

    IDLE = "idle"
    LOADED = "loaded"
    RUNNING = "running"
    #: The run is paused (``POST /v1/runs/current/pause``).
    PAUSED = "paused"
    STOPPING = "stopping"
    FAILED = "failed"


_D = DaemonState
#: ``{from: {to, ...}}``: every move the daemon makes (staying put is always allowed).
DAEMON_TRANSITIONS: Mapping[DaemonState, frozenset[DaemonState]] = {
    _D.IDLE: frozenset({_D.LOADED}),
    _D.LOADED: frozenset({_D.RUNNING}),
    # A start that fails ends failed; a run ends through stopping.
    _D.RUNNING: frozenset({_D.PAUSED, _D.STOPPING, _D.FAILED, _D.LOADED}),
    _D.PAUSED: frozenset({_D.RUNNING, _D.STOPPING, _D.FAILED}),
    _D.STOPPING: frozenset({_D.LOADED, _D.FAILED}),
    _D.FAILED: frozenset({_D.LOADED, _D.RUNNING}),
}

#: The daemon's states while a run is under way: loads and starts are refused.
BUSY_STATES = frozenset({_D.RUNNING, _D.PAUSED, _D.STOPPING})


@dataclasses.dataclass
class RunRecord:
    """One run of this daemon, as ``GET /v1/runs/{id}`` reports it (and the journal keeps it).

    ``state``: starting, running, stopping, complete, failed or recovered
    (:class:`RunState`); ``started_at``/``stopped_at``: ISO 8601 UTC with
    milliseconds; ``duration_s``: seconds; ``frames``/``dropped``: per stream.
    """

    run_id: str
    pipeline: str
    state: RunState
    started_at: str
    metadata: dict[str, Any]
    stopped_at: str | None = None
    duration_s: float | None = None
    files: list[str] = dataclasses.field(default_factory=list)
    frames: dict[str, int] = dataclasses.field(default_factory=dict)
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    restarts: dict[str, int] = dataclasses.field(default_factory=dict)
    failure: str | None = None

    def __post_init__(self) -> None:
        # A journal line holds the state's string; ValueError for one rigd never wrote.
        self.state = RunState(self.state)

    @property
    def active(self) -> bool:
        """Whether the run is under way (starting, running, paused or stopping)."""
        return self.state in ACTIVE_RUN_STATES

    def move(self, state: RunState) -> None:
        """Move to ``state`` along :data:`rigd.pipeline.RUN_TRANSITIONS`.

        Raises:
            IllegalTransitionError: the table does not list the move (a bug in rigd).
        """
        check_transition(RUN_TRANSITIONS, self.state, state, f"run {self.run_id}")
        self.state = state

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready data, a copy (containers too): ~8 us where
        ``dataclasses.asdict``'s recursion took ~150 us (every status request has one)."""
        record = {name: getattr(self, name) for name in _RUN_FIELDS}
        record["state"] = str(self.state)
        record["metadata"] = copy.deepcopy(self.metadata)
        for name in ("files", "frames", "dropped", "restarts"):
            record[name] = copy.copy(record[name])
        return record


_RUN_FIELDS = tuple(field.name for field in dataclasses.fields(RunRecord))


def check_daemon_transition(old: DaemonState, new: DaemonState) -> None:
    """Raise ``IllegalTransitionError`` unless the daemon may move ``old -> new``."""
    check_transition(DAEMON_TRANSITIONS, old, new, "daemon")


def new_run_id(used: Container[str]) -> str:
    """A run id from the time now (UTC, ``20261130T031500``), ``-2``, ``-3``... if used."""
    base = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    run_id, n = base, 1
    while run_id in used:
        n += 1
        run_id = f"{base}-{n}"
    return run_id
