"""The daemon's core: one pipeline, its runs, and the state machine around them.

The states and their transitions are in :mod:`rigd.service._records`
(``DAEMON_TRANSITIONS``); a request the state does not allow is a
``TransitionError`` (HTTP 409) that says what to do instead. A load that
fails validation changes nothing: the pipeline already loaded stays loaded.
Long operations (start, stop) run on the caller's thread (the API hands them
to a worker thread), never under the lock; the state says one is under way,
so a second start or stop is refused at once.

The end of a run comes as an event from the pipeline (``Pipeline.on_end``:
its sources finished and every reader drained, or an actor failed for good);
the daemon then stops it and records how it ended. The monitor (``_monitor``)
samples the running pipeline twice a second for status, health and the disk.
This module is the state machine alone, every method a move of it under
one lock; its parts are beside it: pause and resume (``_daemon_pause``),
what it reports (``_daemon_views``), run ids (``_run_ids``), the journal of
runs (``_journal``), the disk (``_disk``), events (``_events``), the status
sample (``_snapshot``), pipeline files (``_pipelines``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rigd._address import default_runtime_dir
from rigd.config import ServiceConfig
from rigd.pipeline import Pipeline, Plan, RunReport, RunState
from rigd.service._confine import Confinement
from rigd.service._daemon_pause import UNDER_WAY, DaemonPause
from rigd.service._daemon_views import DaemonViews
from rigd.service._disk import DiskWatch
from rigd.service._events import Event, EventBus, now
from rigd.service._journal import RUNS_JOURNAL, RunJournal
from rigd.service._monitor import Monitor
from rigd.service._pipelines import (
    check_pipeline,
    find_pipeline_file,
    pipeline_info,
    trigger_recorders,
)
from rigd.service._progress import progress_event
from rigd.service._records import (
    BUSY_STATES,
    DaemonState,
    InsufficientStorageError,
    NotFoundError,
    RunRecord,
    TransitionError,
    check_daemon_transition,
    new_run_id,
)
from rigd.service._run_ids import check_run_id, retried_run
from rigd.service._start_places import check_places
from rigd.storage import check_metadata

__all__ = [
    "RUNS_JOURNAL",
    "Daemon",
    "DaemonState",
    "InsufficientStorageError",
    "NotFoundError",
    "RunRecord",
    "TransitionError",
]

log = logging.getLogger(__name__)

# A start waits for every actor's setup: allow for slow hardware.
_START_WAIT_S = 300.0


class Daemon(DaemonPause, DaemonViews):
    """One pipeline at a time and its runs, behind a state machine.

    Args:
        config: the resolved service config.
    """

    def __init__(self, config: ServiceConfig) -> None:
        assert config.data_dir is not None, "resolve the config first"
        self.config = config
        self.data_dir: Path = config.data_dir
        #: The journal and the runs' log files (``state_dir``; default the data directory).
        self.state_dir: Path = config.state_dir or config.data_dir
        self._state = DaemonState.IDLE
        self.failure: str | None = None
        #: The failure is a run that could not start: it needs a person (``health``).
        self._failed_start = False
        self.runtime_dir: Path = config.runtime_dir or default_runtime_dir()
        self._confinement = Confinement(self.data_dir, self.runtime_dir, config.publish_hosts)
        self._disk = DiskWatch(self.data_dir, config.disk_warn_minutes)
        self._journal = RunJournal(self.state_dir)
        self._events = EventBus()
        self._lock = threading.RLock()
        self._plan: Plan | None = None
        self._plan_source: str | None = None
        self._pipeline: Pipeline | None = None
        self._run: RunRecord | None = None
        self._closing = threading.Event()
        self._started = threading.Event()
        #: The pipeline whose start is under way (``begin_shutdown`` interrupts it).
        self._starting: Pipeline | None = None
        self._started.set()
        self._runs: dict[str, RunRecord] = self._journal.load()
        self._monitor = Monitor(
            self._watched,
            self._disk,
            self.gpus,
            self._publish,
            progress=lambda run_id: progress_event(self, run_id),
        )

    # -- state and events --------------------------------------------------------------

    @property
    def state(self) -> DaemonState:
        """The daemon's state now (see ``DAEMON_TRANSITIONS``)."""
        return self._state

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` (from any thread) on every state change; returns
        the function that unsubscribes."""
        return self._events.subscribe(callback)

    def _publish(self, kind: str, **data: Any) -> None:
        self._events.publish(kind, self._state.value, **data)

    def _enter(self, state: DaemonState) -> DaemonState:
        """Move to ``state`` along the table (under the lock); returns the state left."""
        with self._lock:
            previous = self._state
            check_daemon_transition(previous, state)
            self._state = state
        return previous

    def _set_state(self, state: DaemonState, **data: Any) -> None:
        previous = self._enter(state)
        if previous != state:
            log.info("daemon: %s -> %s", previous.value, state.value)
            self._publish("state", previous=previous.value, **data)

    # -- pipelines -----------------------------------------------------------------------

    def pipeline_file(self, name: str) -> Path:
        """The pipeline file ``name`` in an allowed directory (``find_pipeline_file``)."""
        return find_pipeline_file(self.config, name)

    def load(self, *, text: str | None = None, name: str | None = None) -> dict[str, Any]:
        """Check a pipeline (its text, or a file by name) and make it the loaded one.

        Raises:
            TransitionError: a run is under way.
            PipelineFileError: the pipeline is wrong (nothing changes).
            NotFoundError: ``name`` names no allowed file.
        """
        with self._lock:
            self._refuse_while_running("load a pipeline")
        plan, source = check_pipeline(self.config, self._confinement.options, text=text, name=name)
        with self._lock:
            # A run may have started while this one was being checked.
            self._refuse_while_running("load a pipeline")
            self._plan, self._plan_source = plan, source
            self.failure = None
            self._failed_start = False
        self._set_state(DaemonState.LOADED, pipeline=plan.name)
        return self.pipeline_info()

    def pipeline_info(self) -> dict[str, Any]:
        """The loaded pipeline; during a run, as the run resolved it (the links
        of device sources have their shapes only once the device is open)."""
        with self._lock:
            running = self._pipeline
            plan = running.plan if running is not None else self._plan
            return pipeline_info(plan, self._plan_source)

    def _refuse_while_running(self, what: str) -> None:
        if self._state in BUSY_STATES:
            run = self._run.run_id if self._run else "?"
            raise TransitionError(
                f"cannot {what} while run {run} is {self._state.value}; "
                "stop it first (POST /v1/runs/current/stop)"
            )

    # -- runs ------------------------------------------------------------------------------

    def start_run(
        self, run_id: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> tuple[RunRecord, bool]:
        """Start a run of the loaded pipeline; returns it and whether it is new.

        A ``run_id`` already used returns that run again and starts nothing,
        so a client may retry a start safely.

        Raises:
            TransitionError: no pipeline loaded, or a run is under way.
            InsufficientStorageError: the run's planned length does not fit the disk.
            TransitionError: also when a place the pipeline names changed since it
                was loaded (a directory removed, unwritable, a symlink out).
            ValueError: ``run_id`` is not a usable name, or ``metadata`` cannot be
            stored in the run file.
            TransitionError: also when the pipeline failed to start (its cause
            chained; the daemon is then ``failed``, with the reason): a camera
            that does not open, a run file that exists already.
        """
        check_run_id(run_id)
        metadata = {**(metadata or {})}
        check_metadata(metadata)
        with self._lock:
            retried = retried_run(self._runs, self._run, run_id, metadata)
            if retried is not None:
                return retried, False
            if self._plan is None:
                raise TransitionError("no pipeline is loaded; load one first (PUT /v1/pipeline)")
            self._refuse_while_running("start a run")
            if self._closing.is_set():
                raise TransitionError("the daemon is shutting down; no new run starts")
            plan = self._plan
            self._disk.check_space(plan)
            # Checked at load, again now: a place may have changed since (409).
            check_places(self._confinement, plan)
            run_id = run_id or new_run_id(self._runs)
            record = RunRecord(
                run_id=run_id,
                pipeline=plan.name,
                state=RunState.STARTING,
                started_at=now(),
                metadata=dict(metadata or {}),
            )
            self._runs[run_id] = record
            self._run = record
            self.failure = None
            self._enter(DaemonState.RUNNING)
            # Journalled now: a run the daemon does not live to finish is still known.
            self._journal.append(record)
        self._publish("state", previous="loaded", run_id=run_id, pipeline=plan.name)
        pipeline = Pipeline(
            plan,
            run_id=run_id,
            metadata=record.metadata,
            log_dir=str(self.state_dir),
            confine_to=str(self.data_dir),
        )
        self._started.clear()
        self._starting = pipeline
        if self._closing.is_set():
            pipeline.interrupt_start()  # told to stop since the check above
        try:
            pipeline.start()
        except BaseException as exc:
            with self._lock:
                self._failed_start = True
            self._finish(record, None, failure=f"the run failed to start: {exc}")
            self._started.set()
            if isinstance(exc, Exception):
                # An answer that says why (409, JSON), not a bare 500.
                raise TransitionError(f"run {run_id} failed to start: {exc}") from exc
            raise
        finally:
            self._starting = None
        with self._lock:
            self._pipeline = pipeline
            self._failed_start = False
            record.move(RunState.RUNNING)
            record.files = [r["path"] for r in pipeline.recordings() if r.get("path")]
            self._journal.append(record)
        self._monitor.run_started()
        self._started.set()
        self._publish("run", run=record.to_dict())
        pipeline.on_end(lambda reason: self._run_ended(pipeline, record, reason))
        pipeline.on_resumed(lambda: self._resumed(record))
        return record, True

    def stop_run(self) -> RunRecord:
        """Stop the current run cleanly (sources first, readers drain, files sealed).

        Raises:
            TransitionError: nothing is running.
        """
        with self._lock:
            record = self._run
            if self._state not in BUSY_STATES or record is None:
                raise TransitionError(
                    f"no run is running (the daemon is {self._state.value}); "
                    "start one first (POST /v1/runs)"
                )
        # A stop that arrives while the run starts waits for it to run.
        self._started.wait(timeout=_START_WAIT_S)
        with self._lock:
            pipeline = self._pipeline
            if pipeline is None:  # it failed to start, or it ended meanwhile
                return record
            record.move(RunState.STOPPING)
        self._set_state(DaemonState.STOPPING, run_id=record.run_id)
        report = pipeline.stop()
        return self._finish(record, report)

    def _run_ended(self, pipeline: Pipeline, record: RunRecord, reason: str) -> None:
        """The pipeline's end event: its sources finished, or an actor failed for good.

        Runs on the thread that ended the run; the stop (a drain) goes on a thread
        of its own. A stop begun by ``stop_run`` is that method's to finish.
        """
        if reason == RunState.STOPPING:
            return
        with self._lock:
            if self._state not in UNDER_WAY or self._run is not record:
                return
            record.move(RunState.STOPPING)
            previous = self._enter(DaemonState.STOPPING)
        self._publish("state", previous=previous.value, run_id=record.run_id)
        threading.Thread(
            target=lambda: self._finish(record, pipeline.stop()),
            name="rigd-run-end",
            daemon=True,
        ).start()

    def trigger(self, label: str = "") -> dict[str, bool]:
        """A soft trigger for every triggered recorder of the current run
        (``TriggeredRecorder.trigger``); returns, per recorder, whether it took
        it (it is armed).

        Raises:
            TransitionError: nothing is running, or the pipeline has no
                triggered recorder.
        """
        with self._lock:
            pipeline = self._pipeline
            if self._state is not DaemonState.RUNNING or pipeline is None:
                raise TransitionError(
                    f"no run is running (the daemon is {self._state.value}); a trigger needs one"
                )
        taken = trigger_recorders(pipeline, label)
        self._publish("trigger", label=label, recorders=taken)
        return taken

    def _finish(
        self, record: RunRecord, report: RunReport | None, failure: str | None = None
    ) -> RunRecord:
        """Record how a run ended and move the daemon on (once per run)."""
        failure = failure or (report.failure if report else None)
        if failure is not None:
            with self._lock:
                plan = self._plan
            files = list(report.files) if report else record.files
            failure = self._disk.failure_cause(failure, files, plan)
        with self._lock:
            if record.stopped_at is not None:
                return record
            record.stopped_at = now()
            record.move(RunState.FAILED if failure else RunState.COMPLETE)
            record.failure = failure
            if report is not None:
                record.duration_s = round(report.duration_s, 3)
                record.files = list(report.files)
                record.frames = dict(report.frames)
                record.dropped = dict(report.dropped)
                record.restarts = dict(report.restarts)
            self._pipeline = None
            self.failure = failure
            self._confinement.remove_sockets()
            state = DaemonState.FAILED if failure else DaemonState.LOADED
            self._journal.append(record)
        self._set_state(state, run_id=record.run_id, failure=failure)
        self._publish("run", run=record.to_dict())
        return record

    # -- shutdown -------------------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """Refuse new runs and end event streams; a start under way ends (its
        files sealed ``aborted``); the run, if any, goes on until ``close``."""
        self._closing.set()
        starting = self._starting
        if starting is not None:
            log.warning("stopping: the start of a run under way is interrupted")
            starting.interrupt_start()
        self._publish("shutdown")

    def close(self) -> RunRecord | None:
        """Stop a running run cleanly (file sealed); return it."""
        self._closing.set()
        record = None
        with self._lock:
            busy = self._state in BUSY_STATES
        if busy:
            with contextlib.suppress(TransitionError):
                record = self.stop_run()
        self._monitor.close()
        return record
