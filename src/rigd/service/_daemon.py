"""The daemon's core: one pipeline, its runs, and the state machine around them.

States and the transitions the REST API may ask for::

    idle --load--> loaded --start--> running --stop--> stopping --> loaded
                     ^  \\                 \\ (sources end) ------------^
                     |   load (another pipeline)
    failed <-- a run that failed to start or failed while running
    failed --load/start--> (as from loaded)

Anything else is a ``TransitionError`` (HTTP 409) that says what to do
instead. A load that fails validation changes nothing: the pipeline already
loaded stays loaded. Long operations (start, stop) run on the caller's
thread (the API hands them to a worker thread), never under the lock; the
state says one is under way, so a second start or stop is refused at once.

A monitor thread samples the running pipeline twice a second: the status
snapshot the API serves (20 clients polling cost no more than one), the
progress the watchdog checks, and the end of a run whose sources finished
or whose actor failed for good.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import errno
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

import rigd
from rigd._address import default_runtime_dir
from rigd._exceptions import PipelineFailedError, RigdError
from rigd.config import BUNDLED_PIPELINES, PipelineFileError, ServiceConfig, load_pipeline
from rigd.gpu import inventory
from rigd.pipeline import Pipeline, PipelineStatus, Plan, RunReport, plan_pipeline
from rigd.service._confine import Confinement
from rigd.service._gpus import gpu_report
from rigd.storage import check_metadata, inspect_run, recover_run

__all__ = [
    "Daemon",
    "DaemonState",
    "InsufficientStorageError",
    "NotFoundError",
    "RunRecord",
    "TransitionError",
]

log = logging.getLogger(__name__)

_MONITOR_S = 0.5
# GPU placements change only when actors start or end: sample them every 2 s.
_GPU_EVERY = 4
# A start waits for every actor's setup: allow for slow hardware.
_START_WAIT_S = 300.0
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
RUNS_JOURNAL = "runs.jsonl"
# Less free than this after a failed run: the disk was full.
_DISK_FULL_BYTES = 1 << 20


class DaemonState(enum.StrEnum):
    IDLE = "idle"
    LOADED = "loaded"
    RUNNING = "running"
    STOPPING = "stopping"
    FAILED = "failed"


class TransitionError(RigdError):
    """The request is not allowed in the daemon's state (HTTP 409)."""


class InsufficientStorageError(RigdError):
    """The run cannot fit the free space of the data directory (HTTP 507)."""


class NotFoundError(RigdError, LookupError):
    """No such run or pipeline file (HTTP 404)."""


@dataclasses.dataclass
class RunRecord:
    """One run of this daemon, as ``GET /v1/runs/{id}`` reports it."""

    run_id: str
    pipeline: str
    state: str  # starting, running, stopping, complete, failed, recovered
    started_at: str
    metadata: dict[str, Any]
    stopped_at: str | None = None
    duration_s: float | None = None
    files: list[str] = dataclasses.field(default_factory=list)
    frames: dict[str, int] = dataclasses.field(default_factory=dict)
    dropped: dict[str, int] = dataclasses.field(default_factory=dict)
    restarts: dict[str, int] = dataclasses.field(default_factory=dict)
    failure: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ended(pipeline: Pipeline) -> bool:
    """Whether the run ended on its own or failed (``wait`` raises for the latter)."""
    try:
        return pipeline.wait(0)
    except PipelineFailedError:
        return True


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def _status_dict(status: PipelineStatus) -> dict[str, Any]:
    return {
        "actors": {name: dict(info) for name, info in status.actors.items()},
        "links": [
            {
                "ring": link.ring,
                "written": link.written,
                "rate_hz": round(link.rate_hz, 2),
                "fill": round(link.fill, 4),
                "readers": [
                    {"input": name, "read": read, "dropped": dropped}
                    for name, read, dropped in link.readers
                ],
            }
            for link in status.links
        ],
    }


class Daemon:
    """One pipeline at a time and its runs, behind a state machine.

    Args:
        config: the resolved service config.
    """

    def __init__(self, config: ServiceConfig) -> None:
        assert config.data_dir is not None, "resolve the config first"
        self.config = config
        self.data_dir: Path = config.data_dir
        self.state = DaemonState.IDLE
        self.failure: str | None = None
        self.runtime_dir: Path = config.runtime_dir or default_runtime_dir()
        self._confinement = Confinement(self.data_dir, self.runtime_dir, config.publish_hosts)
        self._lock = threading.RLock()
        self._plan: Plan | None = None
        self._plan_source: str | None = None
        self._pipeline: Pipeline | None = None
        self._run: RunRecord | None = None
        self._runs: dict[str, RunRecord] = {}
        self._snapshot: dict[str, Any] = {"actors": {}, "links": []}
        self._snapshot_at = time.monotonic()
        self._gpus: list[dict[str, Any]] = []
        self._progress_at = time.monotonic()
        self._frames_seen = -1
        self._subscribers: list[Callable[[dict[str, Any]], None]] = []
        #: The data directory's free space against the running run's data rate.
        self.disk: dict[str, Any] = {}
        self._disk_warned: str | None = None
        self._closing = threading.Event()
        self._started = threading.Event()
        self._started.set()
        self._load_journal()
        self._monitor = threading.Thread(target=self._watch, name="rigd-daemon", daemon=True)
        self._monitor.start()

    # -- events ------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``callback(event)`` (from any thread) on every state change; returns
        the function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def _publish(self, kind: str, **data: Any) -> None:
        event = {"type": kind, "time": _now(), "state": self.state.value, **data}
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                log.exception("an event subscriber failed")

    def _set_state(self, state: DaemonState, **data: Any) -> None:
        with self._lock:
            previous, self.state = self.state, state
        if previous != state:
            log.info("daemon: %s -> %s", previous.value, state.value)
            self._publish("state", previous=previous.value, **data)

    # -- pipelines -----------------------------------------------------------------------

    def pipeline_file(self, name: str) -> Path:
        """The pipeline file ``name`` (``demo`` or ``demo.yaml``) in an allowed directory.

        Raises:
            NotFoundError: no such file in any of them, or ``name`` is a path.
        """
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise NotFoundError(
                f"a pipeline is named by its file name in a pipeline directory, got {name!r}; "
                "send the pipeline's text instead to load one from elsewhere"
            )
        candidates = [name] if name.endswith((".yaml", ".yml")) else [f"{name}.yaml", name]
        directories = list(self.config.pipeline_dirs)
        if self.config.bundled_pipelines:
            directories.append(BUNDLED_PIPELINES)
        for directory in directories:
            for candidate in candidates:
                path = directory / candidate
                if path.is_file():
                    return path
        raise NotFoundError(
            f"no pipeline file {name!r} in {', '.join(str(d) for d in directories)}; "
            "add its directory to pipeline_dirs in the service config, or send its text"
        )

    def load(self, *, text: str | None = None, name: str | None = None) -> dict[str, Any]:
        """Check a pipeline (its text, or a file by name) and make it the loaded one.

        Raises:
            TransitionError: a run is under way.
            PipelineFileError: the pipeline is wrong (nothing changes).
            NotFoundError: ``name`` names no allowed file.
        """
        with self._lock:
            self._refuse_while_running("load a pipeline")
        if (text is None) == (name is None):
            raise ValueError("give the pipeline's text or the name of a pipeline file, not both")
        if name is not None:
            path = self.pipeline_file(name)
            pfile = load_pipeline(path)
            source = str(path)
        else:
            assert text is not None
            pfile = load_pipeline("<request body>", text=text, allow_aliases=False)
            source = "request body"
        try:
            check_metadata(pfile.config.run.metadata)
        except ValueError as exc:
            raise PipelineFileError([f"{pfile.where('run', 'metadata')}: {exc}"]) from None
        plan = plan_pipeline(
            pfile, allowed_modules=self.config.allowed_modules, confine=self._confinement.options
        )
        with self._lock:
            # A run may have started while this one was being checked.
            self._refuse_while_running("load a pipeline")
            self._plan, self._plan_source = plan, source
            self.failure = None
        self._set_state(DaemonState.LOADED, pipeline=plan.name)
        return self.pipeline_info()

    def pipeline_info(self) -> dict[str, Any]:
        with self._lock:
            plan = self._plan
            if plan is None:
                return {"name": None, "source": None, "actors": [], "links": []}
            return {
                "name": plan.name,
                "source": self._plan_source,
                "actors": [
                    {"name": a.name, "class": a.config.class_path, "source": a.is_source}
                    for a in plan.actors
                ],
                "links": [
                    {
                        "ring": r.name,
                        "shape": list(r.shape),
                        "dtype": r.dtype,
                        "slots": r.slots,
                        "readers": [f"{a}.{i}" for a, i, _, _ in r.readers],
                    }
                    for r in plan.rings
                ],
                "text": plan.file.text,
            }

    def _refuse_while_running(self, what: str) -> None:
        if self.state in (DaemonState.RUNNING, DaemonState.STOPPING):
            run = self._run.run_id if self._run else "?"
            raise TransitionError(
                f"cannot {what} while run {run} is {self.state.value}; "
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
            ValueError: ``run_id`` is not a usable name, or ``metadata`` cannot be
            stored in the run file.
            RigdError (or the actor's error): the pipeline failed to start
            (the daemon is then ``failed``, with the reason).
        """
        if run_id is not None and not _RUN_ID.match(run_id):
            raise ValueError(
                f"run_id must be 1-128 letters, digits, '.', '_' or '-' (it names the run "
                f"file), starting with a letter or digit; got {run_id!r}"
            )
        metadata = {**(metadata or {})}
        check_metadata(metadata)
        with self._lock:
            if run_id is not None and run_id in self._runs:
                used = self._runs[run_id]
                if used is self._run and used.state in ("starting", "running", "stopping"):
                    return used, False  # a retry of the start under way: safe
                where = f" (file {', '.join(used.files)})" if used.files else ""
                raise TransitionError(
                    f"run id {run_id!r} was already used by a run that is {used.state}{where}; "
                    "a run is never recorded over: start this run with a new id (e.g. "
                    f"{run_id}-2), or without one to have the daemon choose"
                )
            if self._plan is None:
                raise TransitionError("no pipeline is loaded; load one first (PUT /v1/pipeline)")
            self._refuse_while_running("start a run")
            if self._closing.is_set():
                raise TransitionError("the daemon is shutting down; no new run starts")
            plan = self._plan
            self._check_space(plan)
            run_id = run_id or self._new_run_id()
            record = RunRecord(
                run_id=run_id,
                pipeline=plan.name,
                state="starting",
                started_at=_now(),
                metadata=dict(metadata or {}),
            )
            self._runs[run_id] = record
            self._run = record
            self.failure = None
            self.state = DaemonState.RUNNING
            # Journalled now: a run the daemon does not live to finish is still known.
            self._append_journal(record)
        self._publish("state", previous="loaded", run_id=run_id, pipeline=plan.name)
        pipeline = Pipeline(
            plan, run_id=run_id, metadata=record.metadata, log_dir=str(self.data_dir)
        )
        self._started.clear()
        try:
            pipeline.start()
        except BaseException as exc:
            self._finish(record, None, failure=f"the run failed to start: {exc}")
            self._started.set()
            raise
        with self._lock:
            self._pipeline = pipeline
            record.state = "running"
            record.files = [r["path"] for r in pipeline.recordings() if r.get("path")]
            self._progress_at = time.monotonic()
            self._frames_seen = -1
            self._append_journal(record)
        self._started.set()
        self._publish("run", run=record.to_dict())
        return record, True

    def _new_run_id(self) -> str:
        base = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        run_id, n = base, 1
        while run_id in self._runs:
            n += 1
            run_id = f"{base}-{n}"
        return run_id

    def stop_run(self) -> RunRecord:
        """Stop the current run cleanly (sources first, readers drain, files sealed).

        Raises:
            TransitionError: nothing is running.
        """
        with self._lock:
            record = self._run
            if self.state not in (DaemonState.RUNNING, DaemonState.STOPPING) or record is None:
                raise TransitionError(
                    f"no run is running (the daemon is {self.state.value}); "
                    "start one first (POST /v1/runs)"
                )
        # A stop that arrives while the run starts waits for it to run.
        self._started.wait(timeout=_START_WAIT_S)
        with self._lock:
            pipeline = self._pipeline
            if pipeline is None:  # it failed to start, or it ended meanwhile
                return record
            record.state = "stopping"
        self._set_state(DaemonState.STOPPING, run_id=record.run_id)
        report = pipeline.stop()
        return self._finish(record, report)

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
            if self.state is not DaemonState.RUNNING or pipeline is None:
                raise TransitionError(
                    f"no run is running (the daemon is {self.state.value}); a trigger needs one"
                )
            names = [
                a.name
                for a in pipeline.plan.actors
                if getattr(a.cls, "records", False) and callable(getattr(a.cls, "trigger", None))
            ]
        if not names:
            raise TransitionError(
                f"pipeline {pipeline.plan.name!r} has no triggered recorder; add a "
                "rigd.pipeline.TriggeredRecorder to take triggers"
            )
        refs = {name: pipeline.handle(name).trigger.remote(label) for name in names}
        taken = {name: bool(rigd.get(ref, timeout=10)) for name, ref in refs.items()}
        self._publish("trigger", label=label, recorders=taken)
        return taken

    def current_run(self) -> tuple[Pipeline, RunRecord] | None:
        """The run under way and its pipeline, or None (pause and resume use it)."""
        with self._lock:
            if self.state is not DaemonState.RUNNING or self._pipeline is None or not self._run:
                return None
            return self._pipeline, self._run

    def _finish(
        self, record: RunRecord, report: RunReport | None, failure: str | None = None
    ) -> RunRecord:
        """Record how a run ended and move the daemon on (once per run)."""
        failure = failure or (report.failure if report else None)
        if failure is not None:
            failure = self._disk_cause(failure, list(report.files) if report else record.files)
        with self._lock:
            if record.stopped_at is not None:
                return record
            record.stopped_at = _now()
            record.state = "failed" if failure else "complete"
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
            self._append_journal(record)
        self._set_state(state, run_id=record.run_id, failure=failure)
        self._publish("run", run=record.to_dict())
        return record

    def runs(self) -> list[RunRecord]:
        with self._lock:
            return list(self._runs.values())

    def run(self, run_id: str) -> RunRecord:
        with self._lock:
            if run_id == "current" and self._run is not None:
                return self._run
            try:
                return self._runs[run_id]
            except KeyError:
                raise NotFoundError(
                    f"no run {run_id!r} on this daemon; GET /v1/runs lists them"
                ) from None

    # -- the journal of runs ---------------------------------------------------------------

    def _journal_path(self) -> Path:
        return self.data_dir / RUNS_JOURNAL

    def _load_journal(self) -> None:
        try:
            lines = self._journal_path().read_text().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            try:
                record = RunRecord(**json.loads(line))
            except (ValueError, TypeError):
                log.warning("skipping a damaged line of %s", self._journal_path())
                continue
            self._runs[record.run_id] = record  # a run's last line is how it stands
        for record in self._runs.values():
            if record.state in ("starting", "running", "stopping"):
                self._recover(record)

    def _recover(self, record: RunRecord) -> None:
        """A run the daemon did not live to finish: ``recovered``, with what its files hold."""
        frames: dict[str, int] = {}
        for path in record.files:
            try:
                report = recover_run(path)  # repaired at start-up already: this reads it
            except (OSError, ValueError) as exc:
                log.warning("run %s: cannot read %s: %s", record.run_id, path, exc)
                continue
            for stream, n in report.frames.items():
                frames[stream] = frames.get(stream, 0) + n
        record.state = "recovered"
        record.frames = frames or record.frames
        record.failure = (
            "the daemon stopped during this run (killed or crashed); its files were repaired "
            "at the next start and keep every frame that reached the disk"
        )
        self._append_journal(record)

    def _append_journal(self, record: RunRecord) -> None:
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            with open(self._journal_path(), "a") as f:
                f.write(json.dumps(record.to_dict()) + "\n")
        except OSError as exc:
            log.error("could not note run %s in %s: %s", record.run_id, self._journal_path(), exc)

    # -- status, health ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The state, the pipeline, the run, actors and links (sampled twice a second)."""
        with self._lock:
            plan = self._plan
            run = self._run.to_dict() if self._run is not None else None
            snapshot = self._snapshot
            pipeline = self._pipeline
            return {
                "state": self.state.value,
                "failure": self.failure,
                "pipeline": plan.name if plan else None,
                "namespace": pipeline.namespace if pipeline else None,
                "run": run,
                "actors": snapshot["actors"],
                "links": snapshot["links"],
                "gpus": self._gpus,
                "disk": self.disk,
                "sampled_at": snapshot.get("sampled_at"),
            }

    def health(self) -> tuple[bool, str]:
        """Whether the daemon is healthy, and a one-line status for systemd."""
        now = time.monotonic()
        with self._lock:
            state, run, snapshot = self.state, self._run, self._snapshot
            stalled = now - self._progress_at
            monitor_age = now - self._snapshot_at
        if monitor_age > 10 * _MONITOR_S + 5:
            return False, f"the monitor has not sampled for {monitor_age:.0f} s"
        if self.disk.get("warning"):
            return False, str(self.disk["warning"])
        if state == DaemonState.FAILED and self.failure and "No space left" in self.failure:
            return False, self.failure
        if state == DaemonState.RUNNING and run is not None and run.state == "running":
            rate = sum(link["rate_hz"] for link in snapshot["links"])
            dropped = sum(r["dropped"] for link in snapshot["links"] for r in link["readers"])
            line = f"running {run.run_id}: {rate:.0f} frames/s on all links, {dropped} dropped"
            if stalled > self.config.watchdog_stall_s:
                return False, f"run {run.run_id} moved no frame for {stalled:.0f} s"
            return True, line
        pipeline = f" {self._plan.name}" if self._plan is not None else ""
        return True, f"{state.value}{pipeline}"

    def _watch(self) -> None:
        ticks = 0
        while not self._closing.wait(_MONITOR_S):
            if ticks % _GPU_EVERY == 0:
                with contextlib.suppress(Exception):
                    self._gpus = self.gpus()
            ticks += 1
            with self._lock:
                pipeline, record = self._pipeline, self._run
                running = self.state == DaemonState.RUNNING
            snapshot: dict[str, Any] = {"actors": {}, "links": []}
            if pipeline is not None:
                try:
                    snapshot = _status_dict(pipeline.status())
                except Exception as exc:  # noqa: BLE001 - a sample may race the stop
                    log.debug("status sample failed: %s", exc)
                    snapshot = self._snapshot
            snapshot["sampled_at"] = _now()
            written = sum(link["written"] for link in snapshot["links"])
            with self._lock:
                self._snapshot = snapshot
                self._snapshot_at = time.monotonic()
                if written != self._frames_seen:
                    self._frames_seen = written
                    self._progress_at = time.monotonic()
            self._watch_disk(snapshot if running else None, record)
            if running and pipeline is not None and record is not None:
                self._check_ended(pipeline, record)

    def _check_ended(self, pipeline: Pipeline, record: RunRecord) -> None:
        """End a run whose sources finished, or whose actor failed for good."""
        if pipeline.state == "failed" or (pipeline.state == "running" and _ended(pipeline)):
            with self._lock:
                if self.state != DaemonState.RUNNING or self._run is not record:
                    return
                record.state = "stopping"
                self.state = DaemonState.STOPPING
            self._publish("state", previous="running", run_id=record.run_id)
            threading.Thread(
                target=lambda: self._finish(record, pipeline.stop()),
                name="rigd-run-end",
                daemon=True,
            ).start()

    # -- the disk ------------------------------------------------------------------------------

    def _free_bytes(self) -> int:
        try:
            info = os.statvfs(self.data_dir)
        except OSError:
            return -1
        return info.f_bavail * info.f_frsize

    def _recorded_frame_bytes(self, plan: Plan) -> dict[str, int]:
        """Bytes per frame of each ring a recorder reads, by ring name."""
        recorders = set(plan.recorders)
        return {
            ring.name: int(np.prod(ring.shape)) * np.dtype(ring.dtype).itemsize
            for ring in plan.rings
            if any(reader[0] in recorders for reader in ring.readers)
        }

    def _check_space(self, plan: Plan) -> None:
        """Refuse a run whose planned length (sources with n_frames) cannot fit the disk."""
        frame_bytes = self._recorded_frame_bytes(plan)
        planned = 0
        for ring_name, size in frame_bytes.items():
            writer = ring_name.split(".")[0]
            actor = next((a for a in plan.actors if a.name == writer), None)
            n_frames = actor.options.get("n_frames") if actor is not None else None
            if not isinstance(n_frames, int) or isinstance(n_frames, bool):
                return  # a run of unknown length: the disk watch warns instead
            planned += n_frames * size
        free = self._free_bytes()
        if free >= 0 and planned > free:
            raise InsufficientStorageError(
                f"the run would record {planned / 1e6:.1f} MB but {self.data_dir} has "
                f"{free / 1e6:.1f} MB free; free space there, or record fewer frames"
            )

    def _watch_disk(self, snapshot: dict[str, Any] | None, record: RunRecord | None) -> None:
        """Free space against the data rate: warn (event, metric, health) before it is full."""
        free = self._free_bytes()
        disk: dict[str, Any] = {"directory": str(self.data_dir), "free_bytes": free}
        with self._lock:
            plan = self._plan
        if snapshot is not None and plan is not None and record is not None and free >= 0:
            frame_bytes = self._recorded_frame_bytes(plan)
            rate = sum(
                link["rate_hz"] * size
                for link in snapshot["links"]
                for name, size in frame_bytes.items()
                if str(link["ring"]).endswith(name)
            )
            disk["rate_bytes_s"] = round(rate, 1)
            if rate > 0:
                minutes = free / rate / 60
                disk["minutes_left"] = round(minutes, 2)
                if minutes < self.config.disk_warn_minutes:
                    disk["warning"] = (
                        f"{self.data_dir} fills in {minutes:.1f} min at {rate / 1e6:.1f} MB/s "
                        f"({free / 1e6:.1f} MB free); free space or stop run {record.run_id}"
                    )
        self.disk = disk
        warning = disk.get("warning")
        if warning and record is not None and self._disk_warned != record.run_id:
            self._disk_warned = record.run_id
            log.warning("%s", warning)
            self._publish("disk", run_id=record.run_id, **disk)

    def _disk_cause(self, failure: str, files: list[str]) -> str:
        """A run failure, with the cause when the data directory's disk is full.

        The recorder's process reports only its exit; the daemon asks the disk
        itself: if it cannot allocate what the recorder writes at a time (up to 64
        frames of its largest stream, 256 MiB at most), the disk is full.
        """
        with self._lock:
            plan = self._plan
        frame = max(self._recorded_frame_bytes(plan).values(), default=0) if plan else 0
        probe = self.data_dir / f".rigd-space-probe-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            full = exc.errno == errno.ENOSPC
        else:
            try:
                os.posix_fallocate(fd, 0, min(max(_DISK_FULL_BYTES, 64 * frame), 1 << 28))
                full = False
            except OSError as exc:
                full = exc.errno == errno.ENOSPC
            finally:
                os.close(fd)
                with contextlib.suppress(OSError):
                    probe.unlink()
        if not full:
            return failure
        kept = []
        for path in files:
            try:
                kept.append(f"{path} keeps {inspect_run(path).frames} frames")
            except (OSError, ValueError):
                kept.append(f"{path} (unreadable)")
        return (
            f"No space left on device: the data directory {self.data_dir} is full; "
            f"{'; '.join(kept) or 'no file was written'} ({failure})"
        )

    # -- actors, GPUs -------------------------------------------------------------------------

    def gpus(self) -> list[dict[str, Any]]:
        """The GPUs and what is placed on each, now."""
        return gpu_report(inventory(), rigd.state.list_actors())

    def actors(self) -> list[dict[str, Any]]:
        """Every actor of the session (the pipeline's and the scripts' detached ones)."""
        return [dataclasses.asdict(info) for info in rigd.state.list_actors()]

    # -- shutdown -------------------------------------------------------------------------------

    def begin_shutdown(self) -> None:
        """Refuse new runs and end event streams; the run, if any, goes on until ``close``."""
        self._closing.set()
        self._publish("shutdown")

    def close(self) -> RunRecord | None:
        """Stop a running run cleanly (file sealed); return it."""
        self._closing.set()
        record = None
        with self._lock:
            busy = self.state in (DaemonState.RUNNING, DaemonState.STOPPING)
        if busy:
            with contextlib.suppress(TransitionError):
                record = self.stop_run()
        self._monitor.join(timeout=5)
        return record
