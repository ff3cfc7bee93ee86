"""Pausing a running pipeline: sources hold, readers drain, the run file notes the span.

``Pipeline.pause()`` calls ``pause`` on every source (``Actor.pause`` hook,
then no ``run_step`` until resumed), so nothing new is produced; every
other actor keeps stepping and drains what is in its rings. Each recorder
notes the pause in every stream's drop ledger (a row with count 0 and
reason ``paused``), and the resume the same way (``resumed after 12.3 s``,
or ``resumed after 600.0 s (the pause limit)``, or ``stopped while
paused, after 12.3 s``): the paused span is the time between the two
rows' ``noted_ns``. ``RunReport.pauses`` lists the
spans too.

A pause is bounded: after ``max_pause_s`` (the pipeline file's
``run.max_pause_s``, 600 s unless set) the pipeline resumes on its own and
logs a warning, so a forgotten pause cannot hold a rig's run for ever.

The run's state moves ``running -> paused -> running`` along the run-state
table (``_state``), under the supervisor's lock; a stop may begin from a
pause (the span then ends ``stop``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from rigd import actors
from rigd.pipeline._state import RunState, StateMachine

__all__ = ["PauseControl", "PauseSpan"]

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 60.0
_RUNNING = frozenset({RunState.RUNNING})
_PAUSED = frozenset({RunState.PAUSED})


@dataclass(frozen=True)
class PauseSpan:
    """One pause of a run: when it began and ended (ISO 8601, UTC), and how it ended."""

    paused_at: str
    resumed_at: str
    duration_s: float
    #: ``resume`` (asked for), ``limit`` (``max_pause_s`` reached) or ``stop``.
    ended_by: str


class PauseControl:
    """The pause of one run: ``Pipeline.pause``/``resume`` and the pause's limit.

    Args:
        max_pause_s: the longest pause; then it resumes on its own.
        machine: the run's state (moved between running and paused).
        lock: the supervisor's lock, held through each move.
        sources: the handles of the actors that produce (paused and resumed).
        recorders: the handles of the recorders (they note each pause).

    Raises:
        ValueError: ``max_pause_s`` is not more than 0.
    """

    def __init__(
        self,
        max_pause_s: float,
        machine: StateMachine[RunState],
        lock: threading.RLock,
        sources: Callable[[], Sequence[Any]],
        recorders: Callable[[], Sequence[Any]],
    ) -> None:
        if not max_pause_s > 0:
            raise ValueError(f"max_pause_s must be more than 0 s, got {max_pause_s!r}")
        self.max_pause_s = float(max_pause_s)
        self._machine = machine
        self._lock = lock
        self._sources = sources
        self._recorders = recorders
        self._since: float | None = None
        self._since_iso = ""
        self._resumed_event = threading.Event()
        self._on_resumed: list[Callable[[], None]] = []
        self.spans: list[PauseSpan] = []

    @property
    def paused_for(self) -> float | None:
        """Seconds since the pause began, or None when not paused."""
        return None if self._since is None else time.monotonic() - self._since

    def on_resumed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` each time the run leaves a pause for running."""
        self._on_resumed.append(callback)

    def pause(self) -> None:
        """Hold every source; note the pause in the run file; arm the limit.

        Raises:
            RuntimeError: the run is not running.
        """
        with self._lock:
            state = self._machine.state
            if state != RunState.RUNNING:
                raise RuntimeError(
                    f"only a running pipeline can pause; this one is {state}"
                    + ("; resume it first" if state == RunState.PAUSED else "")
                )
            refs = [h.__rigd_pause__.remote() for h in self._sources()]
            actors.get(refs, timeout=_CALL_TIMEOUT_S)
            self._since = time.monotonic()
            self._since_iso = _now()
            self._note("paused")
            self._resumed_event = threading.Event()
            threading.Thread(
                target=self._limit,
                args=(self._resumed_event,),
                name="rigd-pause-limit",
                daemon=True,
            ).start()
            self._machine.move(RunState.PAUSED, when=_RUNNING)

    def resume(self) -> PauseSpan:
        """Let the sources produce again; note the span; return it.

        Raises:
            RuntimeError: the run is not paused.
        """
        with self._lock:
            state = self._machine.state
            if state != RunState.PAUSED:
                raise RuntimeError(f"only a paused pipeline can resume; this one is {state}")
            span = self._release("resume")
            self._machine.move(RunState.RUNNING, when=_PAUSED)
        self._resumed()
        return span

    def end(self, ended_by: str) -> None:
        """End a pause, if any: ``limit`` (it resumes) or ``stop`` (a stop begins,
        the run stays paused for it to move on)."""
        with self._lock:
            resumed = self._machine.state == RunState.PAUSED and ended_by != "stop"
            if self._machine.state == RunState.PAUSED or self._since is not None:
                # (Not paused but a span open: it failed while paused.)
                self._release(ended_by)
            if resumed:
                self._machine.move(RunState.RUNNING, when=_PAUSED)
        if resumed:
            self._resumed()

    def _release(self, ended_by: str) -> PauseSpan:
        self._resumed_event.set()
        if ended_by != "stop":
            refs = [h.__rigd_resume__.remote() for h in self._sources()]
            actors.get(refs, timeout=_CALL_TIMEOUT_S)
        since = self._since if self._since is not None else time.monotonic()
        span = PauseSpan(self._since_iso, _now(), round(time.monotonic() - since, 3), ended_by)
        self._since = None
        self.spans.append(span)
        if ended_by == "stop":
            self._note(f"stopped while paused, after {span.duration_s:.1f} s")
        else:
            suffix = " (the pause limit)" if ended_by == "limit" else ""
            self._note(f"resumed after {span.duration_s:.1f} s{suffix}")
        return span

    def _resumed(self) -> None:
        for callback in list(self._on_resumed):
            try:
                callback()
            except Exception:
                log.exception("a resume callback failed")

    def _note(self, text: str) -> None:
        for handle in self._recorders():
            with contextlib.suppress(Exception):
                actors.get(handle.note_event.remote(text), timeout=_CALL_TIMEOUT_S)

    def _limit(self, resumed: threading.Event) -> None:
        if not resumed.wait(self.max_pause_s):
            log.warning(
                "the pause reached its limit of %.1f s (run.max_pause_s); resuming the run",
                self.max_pause_s,
            )
            self.end("limit")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
