"""A run file replayed through a pipeline's processors into a new run file.

The pipeline's sources are replaced by ``FilePlayback`` of the streams they
recorded (``rate: max``), its processors run as written, and its recorder
writes to the output directory, nothing dropped for speed
(``_replay_config``). The new file carries the source's run metadata, a
provenance note (the source file and the pipeline, and what the rewrite
changed), the source run's id, times and pipeline,
and the drop ledger of the streams replayed, reasons kept
(``rigd.storage.carry_source``): a reprocessed file of a lossy run does not
look lossless.

``replay_file`` is one file's whole job, the unit ``rigd reprocess``
(``rigd.service``) runs one after the other or as one Ray task per file. It
lives here, not in the service, so that a Ray worker that runs it imports
the pipeline layer only (not the daemon, its CLI and REST client: about
80 ms of CPU per worker).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rigd.actors import run_locally
from rigd.config import PipelineFile, load_pipeline
from rigd.pipeline._inline import run_inline
from rigd.pipeline._plan import plan_pipeline
from rigd.pipeline._plan_classes import import_checked
from rigd.pipeline._replay_config import Replay, check_replay, replay_config, template
from rigd.pipeline._replay_guard import (
    error_text,
    heed_interrupts,
    replay_timeout,
    run_path,
    sweep_stale_rings,
    unheed_interrupts,
)
from rigd.storage import (
    carry_provenance,
    carry_source,
    check_sealed,
    check_whole,
    made_by,
    mark_failed,
    read_source,
)

__all__ = ["check_replay", "replay_file", "replay_outputs", "replay_pipeline"]

_WAIT_S = 3600.0


def replay_pipeline(text: str, run_file: str, out_dir: str) -> dict[str, Any]:
    """The pipeline (as YAML has it) rewritten to replay ``run_file`` into
    ``out_dir`` (``rigd.pipeline._replay_config``): its sources replaced by
    ``FilePlayback`` of the streams they recorded, nothing dropping for speed.

    Raises:
        PipelineFileError: the pipeline is wrong, or has no recorder, or a
            source that is not recorded (a ``ValueError``).
    """
    return replay_config(load_pipeline("<pipeline>", text=text), run_file, out_dir).config


def replay_outputs(text: str, run_id: str) -> dict[str, str]:
    """The file name each recorder of the pipeline ``text`` writes in a replay
    whose run id is ``run_id``: ``RUN_ID.h5`` for one recorder,
    ``RUN_ID-RECORDER.h5`` for each of several (the ``record:`` shorthand's
    is ``recorder``). ``{}``: the pipeline cannot be replayed (its
    ``replay_file`` names what is wrong)."""
    recorders = _recorders(text)
    return {name: template(name, len(recorders)).format(run_id=run_id) for name in recorders}


@functools.lru_cache(maxsize=8)
def _recorders(text: str) -> tuple[str, ...]:
    """The recorders of the pipeline ``text``, sorted: parsed once per text
    (``rigd reprocess`` asks for each file's outputs before it starts them)."""
    try:
        return tuple(
            sorted(replay_config(load_pipeline("<pipeline>", text=text), None, ".").recorders)
        )
    except ValueError:
        return ()


def _provenance(
    run_file: str, pipeline: str, replay: Replay, before: Any, state: str | None
) -> dict[str, str]:
    name = str(replay.config.get("name", "pipeline"))
    note = f"rigd reprocess of {run_file} through pipeline {name!r}"
    if pipeline:
        note += f" ({pipeline})"
    if state:
        note += f"; {state}"
    if replay.changes:
        note += f"; so that nothing drops offline: {', '.join(replay.changes)}"
    if before:
        note += f"; before that: {before}"
    return {"reprocessed_from": run_file, "reprocessed_pipeline": name, "provenance": note}


def replay_file(
    text: str | PipelineFile,
    run_file: str | os.PathLike[str],
    out_dir: str,
    in_task: bool = False,
    run_id: str | None = None,
    actor_processes: bool = False,
    pipeline_path: str = "",
    timeout: float = _WAIT_S,
    job: str | None = None,
    checked_modules: Sequence[str] = (),
) -> dict[str, Any]:
    """Replay ``run_file`` through the pipeline ``text`` into a new run file in ``out_dir``.

    Its actors run in this process (``run_inline``), or, with
    ``actor_processes``, as a live run's (a process each, rigd's runtime).

    Args:
        text: the pipeline file's YAML, or the file loaded (``load_pipeline``:
            ``rigd reprocess`` loads it once and hands it to each task, whose
            process then never imports pydantic).
        run_file: the run file (HDF5) whose streams stand in for the sources
            (``str`` or ``os.PathLike``).
        out_dir: where the new run file goes (``{run_id}.h5``).
        in_task: run in a Ray task: its actors use this node's processes
            and rings (``rigd.actors.run_locally``), and first the rings
            in /dev/shm of processes that died (a killed worker's) are
            removed (``rigd.storage.remove_stale_rings``).
        run_id: the new run's id (default ``<stem>-reprocessed``).
        actor_processes: a process per actor instead of a thread.
        pipeline_path: the pipeline file, for the provenance note.
        timeout: seconds the replay may take (default 3600; ``rigd
            reprocess --timeout``); one that takes longer is stopped and failed.
        job: this replay's id, written in its outputs' ``reprocess_job``
            attribute (default: a new UUID): a failed replay marks failed only
            the files it made (``rigd.storage.made_by``), never another job's
            of the same name, and ``rigd reprocess`` counts only their frames.
        checked_modules: with ``in_task``, the modules of the pipeline's classes
            that the caller checked (``check_replay``'s answer on ``rigd
            reprocess``'s driver): imported first, so that planning, in each
            new worker, does not read every installed distribution's entry
            points again (``rigd.pipeline._plan_classes.import_checked``).

    Returns:
        ``file``, ``state`` (``done`` or ``failed``), ``output`` (the new
        file; the first recorder's), ``outputs`` (every recorder's, see
        ``replay_outputs``), ``frames`` (recorded, all streams), ``seconds`` (wall clock),
        ``error`` (``"Class: first line"`` when failed), ``warning`` (a done
        replay of a source whose ``run_state`` is not ``complete``: its state
        and failure, as the new file's ``provenance`` says too
        (``rigd.storage.source_state``); or whose actors' steps raised and
        went on, in a thread of this process: which, how often, the last
        error; ``None`` else). Never raises an
        ``Exception``: a file's failure is its result (a ``run_file`` that
        is not a path, an output name too long, a timeout too): the files it
        wrote are kept, marked ``run_state: failed`` (``rigd.storage.mark_failed``);
        a file of an unsealed run is refused (``rigd.storage.check_sealed``:
        the fix is ``rigd recover``), a truncated one too
        (``rigd.storage.check_whole``: it names both sizes).

    Raises:
        KeyboardInterrupt, SystemExit: as they came (Ctrl-C, SIGTERM, a
            cancelled Ray task), once what the replay wrote is sealed and
            marked ``run_state: failed``.
    """
    start = time.monotonic()
    targets: dict[str, Path] = {}
    job = job if isinstance(job, str) and job else uuid.uuid4().hex
    carried: Any = None  # once read: the source, and each recorder's replayed streams
    where = str(run_file)
    # A Ray task is cancelled by a SIGINT: heard even where its worker ignores them.
    interrupts = heed_interrupts() if in_task else None
    try:
        where = run_path(run_file)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if in_task:
            run_locally()  # a Ray task's pipeline: this node's processes and rings
            sweep_stale_rings()
            import_checked(checked_modules)
        run_id = run_id or f"{Path(where).stem}-reprocessed"
        check_whole(where)  # HDF5 would say it holds no stream
        check_sealed(where)  # HDF5 would only name h5clear
        # Its problems name the pipeline file's own lines (ReplayFile).
        loaded = (
            text
            if isinstance(text, PipelineFile)
            else load_pipeline(pipeline_path or "<pipeline>", text=text)
        )
        replay = replay_config(loaded, where, out_dir, one_thread=not actor_processes)
        outputs_named, pfile = replay.outputs(run_id), replay.pfile
        for recorder, name in outputs_named.items():
            target = Path(out_dir) / name
            if target.exists():
                raise FileExistsError(
                    f"{target} exists; a run file is never overwritten "
                    "(choose another --out, or move it)"
                )
            targets[recorder] = target
        # The new file carries the source's metadata and says where it came from.
        source = str(Path(where).resolve())
        # rigd's own attributes (run_state, failure, ...) are not carried: a source
        # that did not complete is said in the provenance note and the row's warning.
        origin = read_source(source)  # read once: its metadata, state, ledgers, ids
        metadata, state = dict(origin.metadata), origin.state
        carried = (origin, {r: replay.streams(r) for r in targets})
        before = metadata.get("provenance")
        metadata.update(_provenance(source, pipeline_path, replay, before, state))
        metadata["reprocess_job"] = job  # rigd.storage.made_by: which files are this replay's
        warning: str | None = None  # a live run's steps are its actors' own logs
        if not actor_processes:
            inline = run_inline(plan_pipeline(pfile), run_id, metadata, float(timeout))
            files: list[str] = inline["files"]
            frames = sum(inline["frames"].values())
            warning = _step_warning(inline["step_errors"])
        else:
            # Imported here: an inline replay (a Ray task's) needs no supervisor.
            from rigd.pipeline._supervisor import Pipeline

            pipeline = Pipeline(plan_pipeline(pfile), run_id=run_id, metadata=metadata)
            pipeline.start()
            try:
                finished = pipeline.wait(timeout)
            finally:
                report = pipeline.stop()
            if not finished:
                raise replay_timeout(timeout)
            if report.state != "stopped":
                raise RuntimeError(report.failure or "the replay did not finish")
            files, frames = list(report.files), sum(report.frames.values())
        for recorder, target in targets.items():
            if target.exists():
                carry_source(origin, str(target), replay.streams(recorder))
        outputs = [str(t) for t in targets.values() if t.exists()] or files
        warning = "; ".join(w for w in (state, warning) if w) or None
        return _result(where, "done", start, outputs, frames, warning=warning)
    except BaseException as exc:  # one file's failure is its row; an interrupt goes on
        error = error_text(exc, where, timeout)
        # What the failed replay wrote is kept, never left looking complete, and
        # still says which run it came from. Only its own: a file of that name
        # that another job made (at the same time) is that job's.
        for recorder, target in targets.items():
            with contextlib.suppress(OSError, ValueError, KeyError):
                if made_by(target, job):
                    mark_failed(target, error)
                    if carried is None:
                        carry_provenance(str(Path(where).resolve()), str(target))
                    else:  # its ledgers and latencies too, as a done file's
                        carry_source(carried[0], str(target), carried[1][recorder])
        if not isinstance(exc, Exception):
            raise
        return _result(where, "failed", start, error=error)
    finally:
        unheed_interrupts(interrupts)


def _result(
    run_file: str,
    state: str,
    start: float,
    outputs: list[str] | None = None,
    frames: int = 0,
    error: str | None = None,
    warning: str | None = None,
) -> dict[str, Any]:
    return {
        "warning": warning,
        "file": run_file,
        "state": state,
        "output": outputs[0] if outputs else None,
        "outputs": tuple(outputs or ()),
        "frames": frames,
        "seconds": time.monotonic() - start,
        "error": error,
    }


def _step_warning(errors: Mapping[str, tuple[int, str]]) -> str | None:
    """A done replay's steps that raised (``run_inline``'s ``step_errors``), in words:
    the frames those steps did not make are missing from what the actors wrote."""
    if not errors:
        return None
    return "; ".join(
        f"{count} step(s) of actor {name!r} raised (the last: {last}); their frames are "
        "missing downstream"
        for name, (count, last) in sorted(errors.items())
    )
