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

__all__ = ["PauseControl", "PauseSpan"]

log = logging.getLogger(__name__)

_CALL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class PauseSpan:
    """One pause of a run: when it began and ended (ISO 8601, UTC), and how it ended."""

    paused_at: str
    resumed_at: str
    duration_s: float
    #: ``resume`` (asked for), ``limit`` (``max_pause_s`` reached) or ``stop``.
    ended_by: str


class PauseControl:
    """The pause state of one run, driven by ``Pipeline.pause``/``resume``.

    Args:
        max_pause_s: the longest pause; then it resumes on its own.
        sources: the handles of the actors that produce (paused and resumed).
        recorders: the handles of the recorders (they note each pause).
        on_limit: called (on a timer thread) when a pause reaches the limit.
    """

    def __init__(
        self,
        max_pause_s: float,
        sources: Callable[[], Sequence[Any]],
        recorders: Callable[[], Sequence[Any]],
        on_limit: Callable[[], None],
    ) -> None:
        if not max_pause_s > 0:
            raise ValueError(f"max_pause_s must be more than 0 s, got {max_pause_s!r}")
        self.max_pause_s = float(max_pause_s)
        self._sources = sources
        self._recorders = recorders
        self._on_limit = on_limit
        self._since: float | None = None
        self._since_iso = ""
        self._resumed = threading.Event()
        self.spans: list[PauseSpan] = []

    @property
    def paused_for(self) -> float | None:
        """Seconds since the pause began, or None when not paused."""
        return None if self._since is None else time.monotonic() - self._since

    def pause(self) -> None:
        """Hold every source; note the pause in the run file; arm the limit."""
        refs = [h.__rigd_pause__.remote() for h in self._sources()]
        actors.get(refs, timeout=_CALL_TIMEOUT_S)
        self._since = time.monotonic()
        self._since_iso = _now()
        self._note("paused")
        self._resumed = threading.Event()
        threading.Thread(
            target=self._limit, args=(self._resumed,), name="rigd-pause-limit", daemon=True
        ).start()

    def resume(self, ended_by: str = "resume") -> PauseSpan:
        """Let the sources produce again; note the span."""
        self._resumed.set()
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
            self._on_limit()


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
