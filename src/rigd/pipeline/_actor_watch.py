"""The supervisor's monitor: one thread that looks at a run's actors every 0.2 s.

An actor's process and step loop cannot push their state to the supervisor,
so this is the one loop that asks: the head's actor table for deaths and
restarts, and each actor's step loop (a call to its main thread) for the end
of the run. It turns what it sees into events: a restart is rejoined, an
actor gone for good fails the run, and every step loop ended is the run's
end (``StateMachine.end("finished")``), which ``Pipeline.wait`` and the
daemon's ``on_end`` callbacks receive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from rigd._exceptions import ActorDiedError, RigdError
from rigd.actors import ACTOR_STEP_ERRORS_EXIT, ActorHandle, ActorInfo, get, list_actors
from rigd.pipeline._state import RunState, StateMachine

__all__ = ["ActorWatch", "actor_infos"]

_MONITOR_S = 0.2
_CALL_TIMEOUT_S = 60.0
#: A paused run's actors are watched too (a source may die while it holds).
_WATCHED = frozenset({RunState.RUNNING, RunState.PAUSED})


def actor_infos() -> dict[str, ActorInfo]:
    """The session's actors by id, as the head knows them now."""
    return {info.actor_id: info for info in list_actors()}


class ActorWatch:
    """Watches ``handles`` while ``machine`` is running, until ``close``.

    Args:
        handles: the run's actors by name (read at each look).
        restarts: restarts seen so far by name; updated when one is rejoined.
        machine: the run's state; ``finished`` ends it.
        rejoin: ``rejoin(name, restarts)``: bring a restarted actor back in.
        fail: ``fail(reason, actor, last_error)``: an actor is gone for good.
        last_error: ``last_error(actor)``: the last ``run_step`` error an actor
            left before it gave up (``RunLog.last_error``), or None.
    """

    def __init__(
        self,
        handles: Mapping[str, ActorHandle[Any]],
        restarts: dict[str, int],
        machine: StateMachine[RunState],
        rejoin: Callable[[str, int], None],
        fail: Callable[[str, str, str | None], None],
        last_error: Callable[[str], str | None] | None = None,
    ) -> None:
        self._handles = handles
        self._restarts = restarts
        self._machine = machine
        self._rejoin = rejoin
        self._fail = fail
        self._last_error = last_error
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="rigd-supervisor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop watching (and wait for the thread, unless this is it)."""
        self._closed.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _watch(self) -> None:
        while not self._closed.wait(_MONITOR_S):
            if self._machine.state not in _WATCHED:
                continue
            if not self._look():
                return
            # Each look asks every actor (a call to its main thread): a few
            # times a second is enough, and keeps out of the step threads' way.
            if not self._machine.ended and self._all_finished():
                self._machine.end("finished")

    def _look(self) -> bool:
        """Fail the run if an actor is gone for good (False), rejoin restarted ones."""
        infos = actor_infos()
        for name, handle in list(self._handles.items()):
            info = infos.get(handle._actor_id)
            if info is None or info.state == "dead":
                reason = (info.death_reason if info else None) or "it is gone"
                if reason.endswith(f" exited with code {ACTOR_STEP_ERRORS_EXIT}"):
                    # Its step loop's own exit, not a crash (``max_step_errors``).
                    reason = "its run_step failed max_step_errors times in a row, so it gave up"
                last = self._last_error(name) if self._last_error is not None else None
                if last and last not in (reason or ""):  # an exit's reason may quote it already
                    reason = f"{reason}; its last error: {last}"
                self._fail(f"actor {name!r} died and will not be restarted: {reason}", name, last)
                return False
            if info.restarts > self._restarts[name] and info.state == "alive":
                self._restarts[name] = info.restarts
                self._rejoin(name, info.restarts)
        return True

    def _all_finished(self) -> bool:
        try:
            statuses = get(
                [h.__rigd_status__.remote() for h in self._handles.values()],
                timeout=_CALL_TIMEOUT_S,
            )
        except (ActorDiedError, RigdError):
            return False  # a restart is under way; the next look handles it
        return all(s["state"] == "finished" for s in statuses)
