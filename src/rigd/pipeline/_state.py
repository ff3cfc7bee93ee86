"""A run's states, the transitions between them, and the end of a run as an event.

One enum, :class:`RunState`, names every state a run passes through; the
supervisor (``Pipeline.state``, ``PipelineStatus.state``, ``RunReport.state``)
and the daemon's run records (``GET /v1/runs/{id}``'s ``state``) use its
members, whose values are the strings the API and the run journal have
always carried (a :class:`enum.StrEnum` member equals its string).

The supervisor's walk::

    created --load--> ready --run--> running --stop--> stopping --> stopped
       \\                \\              |  \\  (pause)     ^  (a failure: failed)
        `-- failed <-----`--------------'   paused ------'

The daemon's record of a run: ``starting -> running -> stopping -> complete``
(or ``failed``); a run the daemon did not live to finish is ``recovered`` at
its next start. ``paused``: ``Pipeline.pause`` (and the daemon's record of
the run) moves a running run there; a resume, the pause's limit or a stop
moves it on (``_pause``).

:class:`StateMachine` holds one state under a lock, refuses a move the table
does not list (:class:`IllegalTransitionError`, a bug in rigd, not a user's
error), and delivers the end of a run as an event: callbacks registered with
:meth:`StateMachine.on_end` run once, on the thread that ended the run, and
:meth:`StateMachine.wait_end` blocks on a :class:`threading.Event` instead of
polling.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Generic, TypeVar

from rigd._exceptions import IllegalTransitionError

__all__ = [
    "ACTIVE_RUN_STATES",
    "RUN_TRANSITIONS",
    "IllegalTransitionError",
    "RunState",
    "StateMachine",
    "check_transition",
]

log = logging.getLogger(__name__)


class RunState(enum.StrEnum):
    """Every state of a run, the supervisor's and the daemon's record's."""

    #: A pipeline made from a plan, nothing started (supervisor).
    CREATED = "created"
    #: The daemon accepted a start and the pipeline is loading (record).
    STARTING = "starting"
    #: Rings and actors made and set up, no step run yet (supervisor).
    READY = "ready"
    RUNNING = "running"
    #: Sources held, readers draining, actors and rings kept (``Pipeline.pause``).
    PAUSED = "paused"
    #: Sources stopped, readers draining, files being sealed.
    STOPPING = "stopping"
    #: Torn down without a failure (supervisor).
    STOPPED = "stopped"
    #: Ended without a failure, files sealed (record).
    COMPLETE = "complete"
    FAILED = "failed"
    #: A run the daemon did not live to finish, its files repaired (record).
    RECOVERED = "recovered"


#: A run under way: a daemon refuses another, and an export of it.
ACTIVE_RUN_STATES = frozenset(
    {RunState.STARTING, RunState.RUNNING, RunState.PAUSED, RunState.STOPPING}
)

_S = TypeVar("_S", bound=enum.Enum)

_R = RunState
#: ``{from: {to, ...}}``: every move a run may make (staying put is always allowed).
RUN_TRANSITIONS: Mapping[RunState, frozenset[RunState]] = {
    # The supervisor: load, then run; a load or run that fails tears down (failed,
    # then stopped); a failure while running stops the run.
    _R.CREATED: frozenset({_R.READY, _R.FAILED, _R.STOPPING, _R.STOPPED}),
    _R.READY: frozenset({_R.RUNNING, _R.FAILED, _R.STOPPING}),
    _R.RUNNING: frozenset({_R.PAUSED, _R.STOPPING, _R.FAILED, _R.RECOVERED}),
    _R.PAUSED: frozenset({_R.RUNNING, _R.STOPPING, _R.FAILED, _R.RECOVERED}),
    _R.STOPPING: frozenset({_R.STOPPED, _R.FAILED, _R.COMPLETE, _R.RECOVERED}),
    _R.FAILED: frozenset({_R.STOPPING, _R.STOPPED}),
    _R.STOPPED: frozenset(),
    # The daemon's record: starting, running, stopping, then how it ended; a run
    # under way when the daemon died is recovered at its next start.
    _R.STARTING: frozenset({_R.RUNNING, _R.FAILED, _R.COMPLETE, _R.RECOVERED}),
    _R.COMPLETE: frozenset(),
    _R.RECOVERED: frozenset(),
}


def check_transition(table: Mapping[_S, frozenset[_S]], old: _S, new: _S, what: str) -> None:
    """Raise :class:`IllegalTransitionError` unless ``table`` allows ``old -> new``."""
    if new != old and new not in table.get(old, frozenset()):
        allowed = sorted(str(s.value) for s in table.get(old, frozenset()))
        raise IllegalTransitionError(
            f"{what}: no transition from {old.value!r} to {new.value!r} (allowed: {allowed})"
        )


class StateMachine(Generic[_S]):
    """One state under a lock, moved only along ``table``'s transitions.

    Args:
        initial: the state to begin in.
        table: ``{from: {to, ...}}``; a state absent from it has no way out.
        ending: the states that end a run: entering one (from outside the set)
            fires the end event once.
        name: what the state belongs to, for messages and the log.
    """

    def __init__(
        self,
        initial: _S,
        table: Mapping[_S, frozenset[_S]],
        *,
        ending: frozenset[_S] = frozenset(),
        name: str = "run",
    ) -> None:
        self._state = initial
        self._table = table
        self._ending = ending
        self._name = name
        self._lock = threading.RLock()
        self._ended = threading.Event()
        self._end_reason: str | None = None
        self._on_end: list[Callable[[str], None]] = []

    @property
    def state(self) -> _S:
        return self._state

    def can(self, new: _S) -> bool:
        """Whether the table allows the move from the state now to ``new``."""
        return new == self._state or new in self._table.get(self._state, frozenset())

    def move(self, new: _S, *, when: frozenset[_S] | None = None) -> _S | None:
        """Move to ``new``; returns the state left, or None if ``when`` did not hold.

        ``when``: move only from one of these states (checked under the lock);
        otherwise nothing changes and None is returned.

        Raises:
            IllegalTransitionError: the table does not list the move.
        """
        with self._lock:
            old = self._state
            if when is not None and old not in when:
                return None
            check_transition(self._table, old, new, self._name)
            self._state = new
        if new in self._ending and old not in self._ending:
            self.end(str(new.value))
        return old

    def end(self, reason: str) -> None:
        """Deliver the end of the run (once): set the event, run the callbacks."""
        with self._lock:
            if self._ended.is_set():
                return
            self._end_reason = reason
            self._ended.set()
            callbacks, self._on_end = self._on_end, []
        for callback in callbacks:
            try:
                callback(reason)
            except Exception:
                log.exception("%s: an end-of-run callback failed", self._name)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    @property
    def end_reason(self) -> str | None:
        """Why the run ended (``finished``, or the state it ended in), None before."""
        return self._end_reason

    def on_end(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` once when the run ends (at once if it has)."""
        with self._lock:
            if not self._ended.is_set():
                self._on_end.append(callback)
                return
            reason = self._end_reason or ""
        callback(reason)

    def wait_end(self, timeout: float | None = None) -> bool:
        """Block until the run ends; True if it did within ``timeout`` seconds."""
        return self._ended.wait(timeout)
