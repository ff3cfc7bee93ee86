"""A run's end: the graceful stop (sources first, readers drain) and the teardown.

``Pipeline.stop`` (``_supervisor``) stops the actors in ``stop_order``:
each one downstream drains its inputs (``__rigd_wait_finished__``) before
its ``stop``; a dead one's rings are closed so its readers drain and end.
``teardown`` then kills what is left, unlinks the rings, ends the run's
store entries and makes the ``RunReport`` (run files repaired on a kill).
``abort_start`` ends a start that failed or was interrupted: its run files
are sealed as ``aborted``; ``abort_loaded`` does the same for a loaded run
that will not run (another node's part of a cluster run failed to start).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rigd import actors
from rigd._exceptions import GetTimeoutError
from rigd.actors import ACTOR_STOP_GRACE_S
from rigd.pipeline._actor_watch import actor_infos
from rigd.pipeline._run_start import CALL_TIMEOUT_S, collect_started_files
from rigd.pipeline._run_status import RunReport, recorded
from rigd.pipeline._state import RunState
from rigd.pipeline._stop_order import fed_from_afar, stop_order

if TYPE_CHECKING:
    from rigd.pipeline._supervisor import Pipeline

__all__ = [
    "LAST_GRACE_S",
    "SAY_WAIT_S",
    "DrainWait",
    "abort_loaded",
    "abort_start",
    "alive",
    "end_rings_of",
    "end_store",
    "stop_graceful",
    "teardown",
]

log = logging.getLogger("rigd.pipeline._supervisor")
#: ``abort_loaded`` ends a run in these (loaded, not run).
_LOADED = frozenset({RunState.READY})

#: Seconds a stop waits for an actor to drain before it says so (``stop_graceful``).
SAY_WAIT_S = 1.0
#: Seconds a stop gives a step under way to return once its timeout is spent
#: (``stop_graceful``): the last of it, kept from the drains.
LAST_GRACE_S = 1.0
#: ``on_wait(actor name, what it waits for, seconds left at most)``: a stop
#: waits for that actor (to drain its inputs, or its run_step to return).
DrainWait = Callable[[str, str, float], None]

#: Seconds a stop waits, at most, for the end of stream of a bridge whose
#: sender is up (``feed_wait``).
FEED_WAIT_S = 5.0


def end_store(p: Pipeline) -> None:
    """Remove the run's store entries, but those kept; list both in the log."""
    store = getattr(p, "_store", None)
    if store is None:
        return
    removed, kept = store.end_run(p.run_id)
    if removed or kept:
        log.info(
            "pipeline %s: run %s's store entries removed: %s; kept: %s",
            p.plan.name,
            p.run_id,
            _some(removed),
            _some(kept),
        )


#: How many of a run's store keys its end's log line names (a run may put thousands).
_KEYS_SAID = 5


def _some(keys: list[str]) -> str:
    """``keys`` for a log line: how many, and the first few (``3 (a, b, c)``,
    ``346 (k0, k1, k2, k3, k4 and 341 more)``); ``none`` for none."""
    if not keys:
        return "none"
    more = f" and {len(keys) - _KEYS_SAID} more" if len(keys) > _KEYS_SAID else ""
    return f"{len(keys)} ({', '.join(keys[:_KEYS_SAID])}{more})"


def alive(p: Pipeline, name: str) -> bool:
    infos = actor_infos()
    info = infos.get(p._handles[name]._actor_id)
    return info is not None and info.state == "alive"


def stop_graceful(p: Pipeline, timeout: float, on_wait: DrainWait | None = None) -> None:
    """Stop the actors in ``stop_order``, each downstream one once its inputs
    drained; ``on_wait(name, doing, seconds_left)`` is called when one has not
    drained, or not stopped, within ``SAY_WAIT_S`` (by default a log line says so).

    ``timeout`` seconds bound it all, the stops of steps that do not return
    included: the readers drain until ``LAST_GRACE_S`` before it, and each
    actor's stop gives its step under way what is left (``ACTOR_STOP_GRACE_S`` at
    most, the actor runtime's grace; ``LAST_GRACE_S`` at least, so a stop
    past the deadline still lets a step end: each further actor whose step
    hangs adds that much)."""
    end = time.monotonic() + timeout
    deadline = end - min(LAST_GRACE_S, timeout / 2)  # the drains'
    for actor in stop_order(p.plan.actors):
        name = actor.name
        handle = p._handles.get(name)
        if handle is None:
            continue
        if not alive(p, name):
            end_rings_of(p, name)
            continue
        if p.failure is not None:
            tell_failed(p, actor.cls, name, handle)
        try:
            if not actor.is_source or fed_from_afar(actor.cls):
                left = max(0.0, deadline - time.monotonic())
                if fed_from_afar(actor.cls):
                    left = min(left, feed_wait(handle))
                ref = handle.__rigd_wait_finished__.remote(left)
                drained = _get_saying(ref, name, "drain its inputs", left, on_wait)
                if not drained:
                    log.warning(
                        "%s did not drain within the stop's %.0f s; stopping it", name, timeout
                    )
            grace = min(ACTOR_STOP_GRACE_S, max(LAST_GRACE_S, end - time.monotonic()))
            ref = handle.__rigd_stop__.remote(grace)
            _get_saying(ref, name, "stop (its run_step has not returned)", grace, on_wait)
        except Exception as exc:  # noqa: BLE001 - stop the rest whatever one does
            log.error("pipeline %s: stopping %r failed: %s", p.plan.name, name, exc)
            end_rings_of(p, name)
        if callable(getattr(actor.cls, "report_line", None)):  # its line in the run's summary
            with contextlib.suppress(Exception):
                line = actors.get(handle.report_line.remote(), timeout=CALL_TIMEOUT_S)
                if line:
                    p._actor_lines[name] = str(line)
        if name in p.plan.recorders:
            with contextlib.suppress(Exception):
                p._recordings[name] = actors.get(handle.summary.remote(), timeout=CALL_TIMEOUT_S)


def tell_failed(p: Pipeline, cls: Any, name: str, handle: Any) -> None:
    """Before a recorder's stop in a failed run: say the run failed
    (``RunFileActor.run_failed``), so its file is sealed once, ``run_state``
    ``failed`` with the run's ``failure``, never ``complete`` first."""
    if not callable(getattr(cls, "run_failed", None)):
        return  # a recorder of its own (``records = True``) seals as it does
    try:
        actors.get(handle.run_failed.remote(p.failure), timeout=CALL_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - it is stopped anyway
        log.error("pipeline %s: %r was not told the run failed: %s", p.plan.name, name, exc)


def _get_saying(ref: Any, name: str, doing: str, bound: float, on_wait: DrainWait | None) -> Any:
    """``actors.get(ref)``, a call that ends within ``bound`` seconds (and
    ``CALL_TIMEOUT_S``); after ``SAY_WAIT_S``, says what the stop waits for:
    ``on_wait(name, doing, seconds left)``, else a log line."""
    first = min(bound, SAY_WAIT_S)
    try:
        return actors.get(ref, timeout=first)
    except GetTimeoutError:
        pass
    rest = bound - first
    if rest < 1.0:  # its answer on its way (a timeout of 0, or nearly)
        pass
    elif on_wait is None:
        log.info("waiting for %r to %s, %.0f s more at most", name, doing, rest)
    else:
        on_wait(name, doing, rest)
    return actors.get(ref, timeout=rest + CALL_TIMEOUT_S)


def feed_wait(handle: Any) -> float:
    """How long a stop waits for the end of a stream from elsewhere (a bridge
    receiver's): ``FEED_WAIT_S`` while its sender is up (``status()['state']``),
    time for the far side of a cluster run, whose source stopped first, to send
    the frames in flight and its end; none when it is not (absent, dead, or
    silent: it would send no end)."""
    try:
        state = actors.get(handle.status.remote(), timeout=CALL_TIMEOUT_S).get("state")
    except Exception:  # noqa: BLE001 - no answer: do not wait on it
        return 0.0
    return FEED_WAIT_S if state == "up" else 0.0


def end_rings_of(p: Pipeline, name: str) -> None:
    """Close the rings a dead actor wrote, so its readers drain and end."""
    for ring_plan in p.plan.rings:
        if ring_plan.writer == name and ring_plan.name in p._rings:
            with contextlib.suppress(Exception):
                p._rings[ring_plan.name].writer().close()


def teardown(p: Pipeline, force: bool, run_state: str = "recovered") -> RunReport:
    """Kill what is left, unlink the rings, repair the run files (marked ``run_state``)."""
    if p._cpu_latency is not None:
        p._cpu_latency.release()
    if p._watch is not None:
        p._watch.close()
    restarts = dict(p._restarts)
    with contextlib.suppress(Exception):
        infos = actor_infos()
        for name, handle in p._handles.items():
            info = infos.get(handle._actor_id)
            if info is not None:
                restarts[name] = info.restarts
    for handle in p._handles.values():
        with contextlib.suppress(Exception):
            actors.kill(handle)
    p._handles.clear()
    for ring in p._rings.values():
        ring.unlink()
        ring.close()
    p._rings.clear()
    end_store(p)
    files, frames, dropped = recorded(p._recordings.values(), repair=force, run_state=run_state)
    p._machine.move(RunState.FAILED if p.failure else RunState.STOPPED)
    log_path = None
    if p._run_log is not None:
        log_path = str(p._run_log.path) if p._run_log.path else None
        p._run_log.close()
    return RunReport(
        run_id=p.run_id,
        state=p.state,
        duration_s=time.monotonic() - p._started if p._started else 0.0,
        files=tuple(files),
        frames=frames,
        dropped=dropped,
        restarts=restarts,
        failure=p.failure,
        recordings=tuple(dict(r) for r in p._recordings.values()),
        log=log_path,
        last_errors=dict(p._last_errors),
        pauses=tuple(p._pause.spans),
        actor_lines=dict(p._actor_lines),
    )


def abort_start(p: Pipeline, exc: BaseException) -> RunReport:
    """End a start that failed or was interrupted (Ctrl-C, SIGTERM): the report.

    The recorders that made their file are asked for it, then every actor is
    killed and those files are sealed with ``run_state = "aborted"``.
    """
    if p.failure is None:
        interrupted = isinstance(exc, KeyboardInterrupt)
        p.failure = "the start was interrupted" if interrupted else f"{exc}"
    collect_started_files(p)
    return teardown(p, force=True, run_state="aborted")


def abort_loaded(p: Pipeline, reason: str) -> RunReport:
    """End a loaded run that will not run (``load`` done, ``run`` never called),
    as a failed start ends: every actor killed, the run files sealed with
    ``run_state = "aborted"``, ``reason`` the report's ``failure``.

    A run already past ``load`` (running, or ended) is killed instead (``Pipeline.kill``).
    """
    with p._stop_lock:
        if p._report is None and p._machine.move(RunState.FAILED, when=_LOADED) is not None:
            p.failure = reason
            p._report = abort_start(p, RuntimeError(reason))
            return p._report
    return p.kill()
