"""The daemon's pause and resume of the run under way (``Pipeline.pause``).

A run pauses on request and resumes on request or when its pause reaches
its limit (``Pipeline.on_resumed``); the daemon and the run record move
between ``running`` and ``paused`` together, along their tables
(``_records``), under the daemon's lock. ``Daemon`` (``_daemon``) has these
methods from here.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from rigd.pipeline import Pipeline, RunState
from rigd.service._records import DaemonState, RunRecord, TransitionError

__all__ = ["UNDER_WAY", "DaemonPause"]

log = logging.getLogger("rigd.service._daemon")

#: A run under way whose steps go on: pause, resume and its end apply.
UNDER_WAY = frozenset({DaemonState.RUNNING, DaemonState.PAUSED})


class DaemonPause:
    """Pause and resume (a base of ``Daemon``, which sets these)."""

    _lock: threading.RLock
    _state: DaemonState
    _pipeline: Pipeline | None
    _run: RunRecord | None

    if TYPE_CHECKING:

        def _enter(self, state: DaemonState) -> DaemonState: ...

        def _publish(self, kind: str, **data: Any) -> None: ...

    def current_run(self) -> tuple[Pipeline, RunRecord] | None:
        """The run under way (running or paused) and its pipeline, or None."""
        with self._lock:
            if self._state not in UNDER_WAY or self._pipeline is None or self._run is None:
                return None
            return self._pipeline, self._run

    def pause_run(self) -> tuple[RunRecord, float]:
        """Pause the run under way (``Pipeline.pause``); returns it and the
        pause's limit in seconds (then it resumes on its own).

        Raises:
            TransitionError: nothing is running, or it is paused or stopping.
        """
        pipeline, record = self._under_way("a pause")
        try:
            pipeline.pause()
        except RuntimeError as exc:
            raise TransitionError(str(exc)) from None
        self._move_run(record, DaemonState.RUNNING, DaemonState.PAUSED)
        return record, pipeline.max_pause_s

    def resume_run(self) -> tuple[RunRecord, float]:
        """Resume the paused run; returns it and how long it was paused, in seconds.

        Raises:
            TransitionError: nothing is running, or it is not paused.
        """
        pipeline, record = self._under_way("a resume")
        try:
            span = pipeline.resume()
        except RuntimeError as exc:
            raise TransitionError(str(exc)) from None
        self._resumed(record)
        return record, span.duration_s

    def _under_way(self, what: str) -> tuple[Pipeline, RunRecord]:
        current = self.current_run()
        if current is None:
            raise TransitionError(
                f"no run is running (the daemon is {self._state.value}); {what} needs one "
                "(POST /v1/runs starts one)"
            )
        return current

    def _resumed(self, record: RunRecord) -> None:
        """The run left its pause (asked for, or its limit reached): running again."""
        self._move_run(record, DaemonState.PAUSED, DaemonState.RUNNING)

    def _move_run(self, record: RunRecord, old: DaemonState, new: DaemonState) -> None:
        """Move the daemon and ``record`` from ``old`` to ``new`` (running or
        paused) along their tables, if the run is still ``record`` and in ``old``."""
        with self._lock:
            if self._run is not record or self._state is not old:
                return
            record.move(RunState(new.value))
            self._enter(new)
        log.info("daemon: %s -> %s", old.value, new.value)
        self._publish("state", previous=old.value, run_id=record.run_id)
