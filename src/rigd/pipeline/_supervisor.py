"""The supervisor: runs one pipeline plan, from rings to sealed files.

Start: create the rings (this process owns and unlinks them), start every
actor with its resources, attach each to its rings, run ``setup`` on all,
then start the step loops, sources last (every reader is attached before the
first frame, so nothing is missed).

Stop: stop the sources; every actor downstream drains its inputs and ends
when they do (end of stream runs down the links), then ``stop`` runs on it;
recorders seal their files last. A second, forced stop kills everything and
repairs the run files.

Crashes: a monitor thread watches the actors. One that the runtime restarts
(``max_restarts``) is attached, set up and started again while the rest go
on, and every recorder's ledger notes it; frames the restarted actor missed
show up there as gaps. An actor that is gone for good fails the pipeline,
which then stops everything cleanly.

Pause: ``pause``/``resume`` move the run between ``running`` and
``paused`` (``_pause`` holds the sources and notes the spans); a stop or a
kill may begin from a pause, and a source restarted during one holds again.
A run's log lines go to one file (``_run_log``).

This is one object's lifecycle (load, run, pause, stop, kill) over the
rings and actors it owns; its parts with a concept of their own live beside
it: the start (``_run_start``: rings, actors, devices, rejoin), the end
(``_run_end``: the graceful stop, the teardown, the report), ``_state``,
``_actor_watch``, ``_run_status``, ``_pause``, ``_run_log``, ``_endpoints``.

State: a :class:`~rigd.pipeline._state.StateMachine` over ``RunState`` and
its transition table. The end of a run (every actor finished, a failure, or
a stop) is an event: ``wait`` blocks on it and ``on_end`` callbacks (the
daemon's) run when it comes. The monitor is the one loop that looks at the
actors (their processes and step loops cannot push their state to the
supervisor): every 0.2 s, for deaths, restarts and the step loops' end.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from rigd import actors
from rigd._exceptions import PipelineFailedError
from rigd.actors import ActorHandle, ObjectRef
from rigd.pipeline._actor_watch import ActorWatch, actor_infos
from rigd.pipeline._block_signals import BlockSignals
from rigd.pipeline._cpu_latency import CpuLatencyRequest
from rigd.pipeline._endpoints import Wiring, open_endpoints
from rigd.pipeline._pause import PauseControl, PauseSpan
from rigd.pipeline._plan import Plan
from rigd.pipeline._run_end import DrainWait, abort_start, stop_graceful, teardown
from rigd.pipeline._run_log import RunLog, run_log_path
from rigd.pipeline._run_start import (
    CALL_TIMEOUT_S,
    call_all,
    create_actors,
    create_rings,
    open_devices,
    rejoin,
)
from rigd.pipeline._run_status import (
    ActorStatus,
    LinkRates,
    LinkStatus,
    PipelineStatus,
    RunReport,
)
from rigd.pipeline._state import RUN_TRANSITIONS, RunState, StateMachine
from rigd.storage import FrameRing, own_store, remove_stale_rings, remove_stale_stores

__all__ = [
    "ActorStatus",
    "LinkStatus",
    "PauseSpan",
    "Pipeline",
    "PipelineFailedError",
    "PipelineStatus",
    "RunReport",
]

log = logging.getLogger(__name__)

_DRAIN_TIMEOUT_S = 60.0
#: Entering one of these ends the run (the end event fires once).
_ENDING = frozenset({RunState.STOPPING, RunState.FAILED, RunState.STOPPED})
# A kill from another thread (a second Ctrl-C) may tear a load or run down
# under way: each of their moves holds only from the state they began in.
_CREATED = frozenset({RunState.CREATED})
_READY = frozenset({RunState.READY})
#: A kill moves to stopping from these (a torn-down pipeline stays stopped).
_KILLABLE = frozenset(
    {RunState.CREATED, RunState.READY, RunState.RUNNING, RunState.PAUSED, RunState.FAILED}
)
#: A run whose steps may still go on: ``wait`` blocks in these.
_UNDER_WAY = frozenset({RunState.RUNNING, RunState.PAUSED})
#: A stop moves to stopping from these.
_STOPPABLE = frozenset({RunState.READY, RunState.RUNNING, RunState.PAUSED, RunState.FAILED})


class Pipeline:
    """One run of a plan: ``start`` (or ``load`` then ``run``), then ``wait`` and/or ``stop``."""

    def __init__(
        self,
        plan: Plan,
        *,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        log_dir: str | None = None,
        max_pause_s: float | None = None,
        confine_to: str | None = None,
    ) -> None:
        """``log_dir``: where the run's log file goes (see ``_run_log``);
        ``max_pause_s``: the longest pause (default: the file's
        ``run.max_pause_s``), then the run resumes on its own;
        ``confine_to``: the directory the run's recorders must write beneath
        (the daemon's data directory; ``open_beneath``)."""
        self.plan = plan
        self.run_id = run_id or dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        self.metadata = {**plan.file.config.run.metadata, **(metadata or {})}
        self._machine: StateMachine[RunState] = StateMachine(
            RunState.CREATED, RUN_TRANSITIONS, ending=_ENDING, name=f"pipeline {plan.name}"
        )
        self.failure: str | None = None
        self._token = secrets.token_hex(3)
        self._rings: dict[str, FrameRing] = {}
        self._handles: dict[str, ActorHandle[Any]] = {}
        self._wiring: dict[str, Wiring] = {}
        self._restarts: dict[str, int] = {}
        #: The start calls under way, by actor (``call_all``).
        self._start_calls: dict[str, ObjectRef[Any]] = {}
        #: Set by ``interrupt_start`` (``_run_start.get_named`` ends its waits).
        self.start_interrupted = threading.Event()
        self._lock = threading.RLock()
        # Held through a whole stop or kill (re-entrant: a second Ctrl-C
        # forces a kill from inside the stop it interrupts).
        self._stop_lock = threading.RLock()
        self._watch: ActorWatch | None = None
        self._started = 0.0
        self._link_rates = LinkRates(plan)
        self._recordings: dict[str, dict[str, Any]] = {}
        self._report: RunReport | None = None
        self._block_signals = BlockSignals()  # SIGTERM, SIGHUP in a with block
        self._cpu_latency: CpuLatencyRequest | None = None
        self._log_dir = log_dir
        self._confine_to = confine_to
        self._run_log: RunLog | None = None
        self._last_errors: dict[str, str] = {}
        self._actor_lines: dict[str, str] = {}  # RunReport.actor_lines
        self._failed_actor = ""
        self._pause = PauseControl(
            max_pause_s if max_pause_s is not None else plan.file.config.run.max_pause_s,
            self._machine,
            self._lock,
            sources=lambda: [self._handles[a.name] for a in self.plan.actors if a.is_source],
            recorders=lambda: [self._handles[n] for n in self.plan.recorders],
        )

    # -- lifecycle -------------------------------------------------------------------

    @property
    def state(self) -> RunState:
        """Where the run is: ``created``, ``ready``, ``running``, ``paused``,
        ``stopping``, ``stopped`` or ``failed`` (:class:`RunState`; equal to those strings)."""
        return self._machine.state

    def on_end(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(reason)`` once when the run ends: ``finished`` (every
        actor's step loop ended on its own), ``failed`` (an actor is gone for
        good), or ``stopping`` (a stop began). At once if it has ended; else on
        the thread that ended it (the monitor's, or the stopping one): return
        quickly, start a thread for long work."""
        self._machine.on_end(callback)

    def start(self) -> None:
        """``load`` then ``run``: the usual way to start a run."""
        self.load()
        self.run()

    def __enter__(self) -> Pipeline:
        """``with Pipeline(plan) as pipeline:`` starts it (``start``, or ``run`` if
        loaded) and stops it cleanly on leaving the block, however it is left
        (``__exit__``). Entered in the main thread, SIGTERM and SIGHUP raise
        ``StopSignal`` (a ``KeyboardInterrupt``) there until the block is left
        (``_block_signals``). Raises what ``start`` raises (nothing is left running)."""
        self._block_signals.take()
        try:
            if self.state == RunState.READY:
                self.run()
            else:
                self.start()
        except BaseException:
            self._block_signals.restore()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        """``stop()``: a clean stop, files sealed, also when the block raised
        (a Ctrl-C's ``KeyboardInterrupt`` included), which then goes on; its
        report is ``stop()``'s again. A Ctrl-C (or SIGTERM, SIGHUP) during
        that stop kills (``kill``: files repaired) and is raised."""
        try:
            self.stop()
        except KeyboardInterrupt:
            self.kill()
            raise
        finally:
            self._block_signals.restore()

    def load(self) -> None:
        """Create the rings and actors and set them up, without running a step.

        A loaded pipeline costs next to no CPU: its actors wait for ``run``.

        Raises:
            RigdError (or the actor's own error): an actor failed to start or
            set up; everything started is stopped and removed again.
        """
        if self.state != RunState.CREATED:
            raise RuntimeError(f"this pipeline was already loaded (state {self.state})")
        if not actors.is_initialized():
            actors.init()
        # Rings a crashed supervisor left behind (their owner's pid is dead).
        for segment in remove_stale_rings():
            log.warning("removed ring %s left by a process that died", segment)
        for path in remove_stale_stores():
            log.warning("removed store %s left by a process that died", path)
        self._store = own_store()
        started = dt.datetime.now(dt.UTC)
        self._started = time.monotonic()
        try:
            log_path = run_log_path(self.plan, self.run_id, self._log_dir)
            self._run_log = RunLog(self.run_id, log_path.parent if log_path else None)
            open_devices(self)
            create_rings(self)
            run_info = {
                "run_id": self.run_id,
                "pipeline": self.plan.name,
                "pipeline_text": self.plan.file.text,
                "started": started.isoformat(),
                "metadata": dict(self.metadata),
                # The store its actors' rigd.store calls reach (rigd.store).
                "store": self._store.path,
                # Where its actors log and leave their last error (_run_log).
                **self._run_log.run_info(),
                # Recorders open their files beneath it (_confined.open_beneath).
                "confine_to": self._confine_to,
            }
            create_actors(self, run_info)
            call_all(self, "__rigd_attach__", lambda name: (open_endpoints, self._wiring[name]))
            call_all(self, "__rigd_setup__")
            for name in self.plan.recorders:
                self._recordings[name] = actors.get(
                    self._handles[name].summary.remote(), timeout=CALL_TIMEOUT_S
                )
        except BaseException as exc:
            self._machine.move(RunState.FAILED, when=_CREATED)
            with self._stop_lock:
                self._report = abort_start(self, exc)
            raise
        self._machine.move(RunState.READY, when=_CREATED)

    def run(self) -> None:
        """Start every actor's step loop, sources last."""
        if self.state != RunState.READY:
            raise RuntimeError(f"run needs a loaded pipeline (state {self.state})")
        self._started = time.monotonic()
        latency = self.plan.file.config.realtime.cpu_latency_us
        if latency is not None:
            self._cpu_latency = CpuLatencyRequest(latency)
        try:
            # Downstream first, sources last: no frame is written before every
            # reader is attached and running.
            for actor in reversed(self.plan.actors):
                actors.get(self._handles[actor.name].__rigd_run__.remote(), timeout=CALL_TIMEOUT_S)
        except BaseException:
            self._machine.move(RunState.FAILED, when=_READY)
            teardown(self, force=True)
            raise
        self._machine.move(RunState.RUNNING, when=_READY)
        self._watch = ActorWatch(
            self._handles,
            self._restarts,
            self._machine,
            functools.partial(rejoin, self),
            self._fail,
            last_error=self._run_log.last_error if self._run_log else None,
        )
        log.info("pipeline %s running (run %s)", self.plan.name, self.run_id)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the run ends on its own (its sources finished and all
        drained) or fails, or a stop begins; True if it did within ``timeout``
        (at once if the run is not running or paused).

        Raises:
            PipelineFailedError: an actor died for good (its restarts spent,
                or it gave up after ``max_step_errors`` failing steps); the
                message names it and its last error. The pipeline is being
                stopped; ``stop()`` returns its report.
        """
        if self.state in _UNDER_WAY and not self._machine.wait_end(timeout):
            return False
        if self.failure is not None:
            raise PipelineFailedError(
                self.failure, self._failed_actor, self._last_errors.get(self._failed_actor)
            )
        return True

    def pause(self) -> None:
        """Pause the run: sources stop producing, every reader drains what is
        in its rings, and each recorder notes the pause (see ``_pause``).

        A pause longer than ``max_pause_s`` ends on its own (the run resumes).

        Raises:
            RuntimeError: the run is not running (already paused, stopping, ...).
        """
        self._pause.pause()
        log.info("pipeline %s paused (run %s)", self.plan.name, self.run_id)

    def resume(self) -> PauseSpan:
        """Resume a paused run; return the pause's span.

        Raises:
            RuntimeError: the run is not paused.
        """
        span = self._pause.resume()
        log.info("pipeline %s resumed after %.1f s", self.plan.name, span.duration_s)
        return span

    def on_resumed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` each time the run leaves a pause for running
        (``resume``, or the pause's limit reached), on that thread."""
        self._pause.on_resumed(callback)

    def stop(
        self, timeout: float = _DRAIN_TIMEOUT_S, on_wait: DrainWait | None = None
    ) -> RunReport:
        """Stop cleanly: sources first, every lossless reader drains (``timeout``
        s in all; ``on_wait``: see ``stop_graceful``), files sealed. Safe to call
        from several threads (and again): one stop runs, the others get its report.
        """
        with self._stop_lock:
            if self._report is not None:
                return self._report
            self._pause.end("stop")
            self._machine.move(RunState.STOPPING, when=_STOPPABLE)
            try:
                stop_graceful(self, timeout, on_wait)
            finally:
                self._report = teardown(self, force=False)
            return self._report

    def interrupt_start(self) -> None:
        """End a start under way in another thread within 0.25 s: it fails as a
        start does (files sealed ``aborted``). Returns at once."""
        self.start_interrupted.set()

    def kill(self) -> RunReport:
        """Stop at once: kill every actor; run files are repaired and kept."""
        with self._stop_lock:
            if self._report is not None:
                return self._report
            self._machine.move(RunState.STOPPING, when=_KILLABLE)
            self._report = teardown(self, force=True)
            return self._report

    @property
    def max_pause_s(self) -> float:
        """The longest pause: then the run resumes on its own."""
        return self._pause.max_pause_s

    @property
    def namespace(self) -> str:
        """The namespace of this run's named actors (``rigd.get_actor(name, namespace=...)``)."""
        return f"pipeline-{self.plan.name}-{self._token}"

    def handle(self, name: str) -> ActorHandle[Any]:
        """The handle of actor ``name``: call its public methods while it runs."""
        try:
            return self._handles[name]
        except KeyError:
            raise KeyError(
                f"no actor {name!r} in this run; actors: {sorted(self._handles)}"
            ) from None

    def recordings(self) -> tuple[dict[str, Any], ...]:
        """Each recorder's file path, frames and drops per stream, as last reported."""
        return tuple(dict(r) for r in self._recordings.values())

    # -- status ----------------------------------------------------------------------

    def ring_segments(self) -> dict[str, str]:
        """Each ring's shared-memory segment by its link name (``camera.frames``),
        for ``FrameRing.attach``; empty before the run's rings exist or after."""
        return {name: ring.name for name, ring in list(self._rings.items())}

    def status(self) -> PipelineStatus:
        infos = actor_infos()
        by_name: dict[str, ActorStatus] = {}
        for name, handle in self._handles.items():
            info = infos.get(handle._actor_id)
            by_name[name] = ActorStatus(
                state=info.state if info else "dead",
                pid=info.pid if info else None,
                restarts=info.restarts if info else self._restarts.get(name, 0),
            )
        return PipelineStatus(
            state=self.state,
            run_id=self.run_id,
            actors=by_name,
            links=self._link_rates.sample(
                self._rings, {n: a["pid"] for n, a in by_name.items()}, self._started or None
            ),
            elapsed_s=time.monotonic() - self._started if self._started else 0.0,
            failure=self.failure,
        )

    # -- inside ------------------------------------------------------------------------

    def _fail(self, reason: str, actor: str = "", last_error: str | None = None) -> None:
        log.error("pipeline %s failed: %s; stopping it", self.plan.name, reason)
        with self._lock:
            if self.state not in _UNDER_WAY:
                return
            if actor:
                self._failed_actor = actor
                if last_error:
                    self._last_errors[actor] = last_error
            self.failure = reason
            self._machine.move(RunState.FAILED)
        threading.Thread(target=self.stop, name="rigd-supervisor-stop", daemon=True).start()
