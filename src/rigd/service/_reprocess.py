"""``rigd reprocess PIPELINE.yaml RUN.h5...``: run files replayed through a pipeline's processors.

Each run file becomes a new run file (``rigd.pipeline.replay_file``: the
pipeline's sources replaced by ``FilePlayback`` of the stream they recorded,
its recorder writing to ``--out``, the source's metadata, provenance and drop
ledger carried). One job per file: in this process one after the other, or,
with ``--address``, one Ray task per file asking for the pipeline's CPUs and
GPUs, all at once (refused at once when no node has them:
``_reprocess_ray``). A file that fails, or outlives ``--timeout``, is
reported and never stops the others. Ctrl-C or SIGTERM (``_reprocess_signals``)
stops the file being replayed (sealed, marked failed), cancels the Ray
tasks, and still prints the table: exit status 130.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rigd.service._cli_address import not_a_cluster_address
from rigd.service._reprocess_inputs import repeated_files
from rigd.service._reprocess_outputs import (
    cannot_write,
    own_outputs,
    taken_meanwhile,
    with_kept_frames,
)
from rigd.service._reprocess_signals import StopSignals
from rigd.service._reprocess_table import table
from rigd.service._run_signals import unfailing

if TYPE_CHECKING:
    from rigd.config import PipelineFile

__all__ = ["DEFAULT_TIMEOUT_S", "FileResult", "add_parser", "reprocess"]

#: Seconds one file's replay may take by default (``--timeout``).
DEFAULT_TIMEOUT_S = 3600.0

log = logging.getLogger("rigd.reprocess")
#: The states of the table's rows, as the summary line counts them.
_STATES = ("done", "failed", "interrupted", "not started")


@dataclass(frozen=True)
class FileResult:
    """What one file's replay did."""

    file: str
    #: ``done``; ``failed``; ``interrupted`` (Ctrl-C or SIGTERM while it was replayed:
    #: what it wrote is kept, marked ``run_state: failed``); ``not started``.
    state: str
    output: str | None = None
    outputs: tuple[str, ...] = ()  # every recorder's file (``output`` is the first)
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    #: A done file whose processors' steps raised and went on: which, how often, the
    #: last error (their frames are missing downstream, as the file's ledger says).
    warning: str | None = None


def _resources(pipeline: PipelineFile) -> tuple[float, float]:
    """One file's task's CPUs and GPUs: its actors' ``num_cpus`` and ``num_gpus`` added up."""
    actors = pipeline.config.actors
    cpus = sum(a.num_cpus or 0 for a in actors)
    gpus = sum(a.num_gpus or 0 for a in actors)
    return max(1.0, cpus), gpus


def reprocess(
    pipeline: str | Path,
    files: Sequence[str],
    out_dir: str | Path,
    *,
    address: str | None = None,
    progress: Callable[[int, int, FileResult], None] | None = None,
    actor_processes: bool = False,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> list[FileResult]:
    """Replay each of ``files`` through ``pipeline`` into ``out_dir``; one result per file.

    Args:
        address: a Ray address (``rigd.init``'s, e.g. ``ray://HOST:10001``):
            one Ray task per file; ``None``: here, one after the other.
        progress: called as each file ends, with (done, total, result).
        actor_processes: run each file's actors as a live run does (a process
            each, rigd's runtime) instead of as threads of the job's process
            (``rigd.pipeline._inline``: the default, without a start-up cost
            per file).
        timeout: seconds one file's replay may take (``replay_file``'s); a
            file past it is stopped, failed, and the next goes on.

    ``out_dir`` is made once the job can start (with ``address``: connected,
    and a node can hold one file's task); a job refused before leaves nothing.

    Raises:
        ValueError: a file is given more than once (``_reprocess_inputs``), or
            ``out_dir`` is a file, lies under one, or cannot be made
            (``/proc/x``); the message names it and the fix. Or, with
            ``address``, no node of the cluster can hold one file's task (its
            CPUs and GPUs); nothing was submitted.
        ImportError: with ``address``, Ray is not installed (the message
            names the extra to install: ``rigd[cluster]``).
        ConnectionError: with ``address``, no Ray cluster answers there.
        KeyboardInterrupt: as it came (Ctrl-C; SIGTERM under ``rigd
            reprocess``), once the file being replayed was stopped, sealed and
            marked failed, the Ray tasks cancelled, and ``progress`` called for
            every file not reported yet (``interrupted``, ``not started``).
    """
    from rigd.config import load_pipeline
    from rigd.pipeline import check_replay

    if (repeated := repeated_files(files)) is not None:  # one line, before anything runs
        raise ValueError(repeated)

    # Loaded once: each file's job takes it as it is (a Ray task never validates it again).
    loaded = load_pipeline(pipeline)
    # The pipeline's mistakes, once, with its lines: before any file.
    checked = check_replay(loaded)
    text = loaded.text
    pipeline_path = str(Path(pipeline).resolve())
    out = str(Path(out_dir).resolve())
    _check_out(out)
    paths = [str(Path(f).resolve()) for f in files]
    # One output per input, never one written twice or over an existing file:
    # inputs of one name (two run.h5 in two directories; a file given twice was
    # refused above) get -2, -3, ...
    run_ids: list[str] = []
    seen: dict[str, int] = {}
    for path in paths:
        base = f"{Path(path).stem}-reprocessed"
        seen[base] = seen.get(base, 0) + 1
        run_ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    results: dict[int, FileResult] = {}
    targets: list[list[Path]] = []  # each file's outputs, once named (below)
    # Each file's replay's id, in its outputs (rigd.storage.made_by): a job that
    # runs at the same time, into the same --out, has files of the same names.
    batch = uuid.uuid4().hex[:16]
    replay_ids = [f"{batch}-{index}" for index in range(len(paths))]

    def ours(index: int) -> list[Path]:  # file index's outputs that its replay made
        return own_outputs(targets[index], replay_ids[index]) if targets else []

    def finished(index: int, result: dict[str, Any], replayed: bool = True) -> None:
        # A row that did not finish counts the frames its kept outputs hold: only
        # outputs this job wrote (none for a file refused before its replay began).
        kept = ours(index) if replayed and result.get("state") != "done" else ()
        result = taken_meanwhile(result, targets[index]) if targets else result
        item = FileResult(**with_kept_frames(result, kept))
        results[index] = item
        if progress is not None:
            progress(len(results), len(paths), item)

    # Imported here: the CLI imports this module at every start, and a Ray task
    # of replay_file imports rigd.pipeline only (not this service).
    from rigd.pipeline import replay_file, replay_outputs

    targets[:] = [[Path(out) / n for n in replay_outputs(text, r).values()] for r in run_ids]
    todo: list[int] = []
    for index, path in enumerate(paths):
        error = cannot_write(targets[index], path)
        if error:
            finished(index, asdict(FileResult(path, "failed", error=error)), replayed=False)
        else:
            todo.append(index)

    current: list[int] = []  # the file being replayed here
    began = time.monotonic()  # when it began
    try:
        if address is None:
            from rigd.actors import shutdown
            from rigd.storage import remove_stale_rings

            try:
                _make_out(out)
                for segment in remove_stale_rings():  # a killed job's (kill -9)
                    log.warning("removed ring %s left by a process that died", segment)
                for index in todo:
                    current[:] = [index]
                    began = time.monotonic()
                    finished(
                        index,
                        replay_file(
                            loaded,
                            paths[index],
                            out,
                            False,
                            run_ids[index],
                            actor_processes,
                            pipeline_path,
                            timeout,
                            replay_ids[index],
                        ),
                    )
                    current.clear()
            finally:
                shutdown()
        else:
            from rigd.service._reprocess_ray import replay_on_ray

            cpus, gpus = _resources(loaded)
            args = {
                "text": loaded,
                "out_dir": out,
                "actor_processes": actor_processes,
                "pipeline_path": pipeline_path,
                "timeout": timeout,
                "checked_modules": checked,
            }
            jobs = [(i, paths[i], run_ids[i], targets[i], replay_ids[i]) for i in todo]
            # --out is made once the job can start: connected, and a node holds a task.
            replay_on_ray(jobs, args, address, cpus, gpus, finished, ready=lambda: _make_out(out))
    except KeyboardInterrupt:
        for index in range(len(paths)):
            if index in results:
                continue
            if index in current:
                there = [str(t) for t in ours(index)]
                kept = (
                    f"what it replayed is kept in {', '.join(there)}, marked run_state: failed"
                    if there
                    else "it wrote no output"
                )
                row = FileResult(
                    paths[index],
                    "interrupted",
                    seconds=time.monotonic() - began,
                    error=f"interrupted; {kept}",
                )
            else:
                row = FileResult(paths[index], "not started", error="interrupted before it began")
            finished(index, asdict(row))
        raise
    return [results[index] for index in range(len(paths))]


#: What ``--out`` problems end with: the fix.
_OUT_FIX = "give a directory for the new run files (made if missing), e.g. --out ./rigd-reprocessed"


def _check_out(out: str) -> None:
    """Refuse an ``out`` no directory can be made at, before anything is done.

    Raises:
        ValueError: ``out`` is a file, or lies under one; names it and the fix.
    """
    there = Path(out)
    while not there.exists() and there != there.parent:
        there = there.parent
    if there == Path(out) and not there.is_dir():
        raise ValueError(f"--out {out} is a file, not a directory; {_OUT_FIX}")
    if not there.is_dir():
        raise ValueError(f"--out {out} cannot be made: {there} is a file; {_OUT_FIX}")


def _make_out(out: str) -> None:
    """Make the output directory ``out`` (and its parents), once the job can start.

    Raises:
        ValueError: it cannot be made (``/proc/x``, no permission); names it,
            why, and the fix.
    """
    try:
        Path(out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _check_out(out)  # a file took its place meanwhile: say so
        raise ValueError(
            f"--out {out} cannot be made ({exc.strerror or exc}); {_OUT_FIX}"
        ) from None


def _check_classes(pfile: Any) -> None:
    """Import every actor class of ``pfile`` (a ``PipelineFile``), as planning would.

    Raises:
        PipelineFileError: a class cannot be imported; names file, line and key.
    """
    from rigd.config import PipelineFileError

    problems = []
    for i, actor in enumerate(pfile.config.actors):
        module, _, name = actor.class_path.rpartition(".")
        try:
            getattr(importlib.import_module(module), name)
        except Exception as exc:  # noqa: BLE001 - any import failure is the file's problem
            problems.append(
                f"{pfile.where('actors', i, 'class')}: class {actor.class_path!r} cannot be "
                f"imported: {type(exc).__name__}: {exc}"
            )
    if problems:
        raise PipelineFileError(problems)


def _check_pipeline(pipeline: str) -> str | None:
    """What is wrong with the pipeline file, before any run file is touched; None if nothing.

    Read once as it is, so a wrong file (YAML, keys, an actor class that
    cannot be imported) is named with its own line and key. Not planned: its
    sources (a camera, a TIFF stack) are replaced by the run files' streams
    and need not be here.
    """
    from rigd.config import load_pipeline

    try:
        _check_classes(load_pipeline(Path(pipeline)))
    except FileNotFoundError:
        return f"no pipeline file {pipeline}"
    except (OSError, ValueError) as exc:
        return str(exc)
    return None


def _cmd_on_any_terminal(args: argparse.Namespace) -> int:
    """``_cmd`` with stdout and stderr that drop their write errors: after
    SIGHUP the terminal may be gone (each write fails, ``EIO``), and the job
    must still seal its file and exit 130 (``_run_signals.unfailing``)."""
    with (
        contextlib.redirect_stdout(unfailing(sys.stdout)),
        contextlib.redirect_stderr(unfailing(sys.stderr)),
    ):
        return _cmd(args)


def _cmd(args: argparse.Namespace) -> int:
    reported: list[FileResult] = []

    def progress(done: int, total: int, result: FileResult) -> None:
        reported.append(result)
        print(f"[{done}/{total}] {result.file}: {result.state}", flush=True)

    # Actor classes import from the current directory too, as with `rigd run`
    # (here, and in the actor processes, which inherit the path; a Ray
    # cluster's workers import what the cluster's nodes have).
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    results: list[FileResult] = []
    signals = StopSignals()
    try:
        with signals:
            problem = _check_pipeline(args.pipeline)
            wrong = not_a_cluster_address(args.address) if args.address is not None else None
            if problem is None and wrong is not None:
                problem = f"{wrong}; nothing was started"
            if problem:
                print(f"rigd reprocess: {problem}", file=sys.stderr)
                return 2
            results = reprocess(
                args.pipeline,
                args.files,
                args.out,
                address=args.address,
                progress=progress,
                actor_processes=args.actor_processes,
                timeout=args.timeout,
            )
    except (OSError, ValueError, ImportError) as exc:
        # ImportError: --address without Ray; its message names the extra to install.
        print(f"rigd reprocess: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # every file reported: its row, in the order given
        if not reported:
            print("rigd reprocess: interrupted before any file began", file=sys.stderr)
            return 130
        order = [str(Path(f).resolve()) for f in args.files]
        results = sorted(reported, key=lambda r: order.index(r.file) if r.file in order else 0)
    print(table(results))
    counts = {state: sum(r.state == state for r in results) for state in _STATES}
    print(", ".join(f"{n} {state}" for state, n in counts.items() if n or state in _STATES[:2]))
    if signals.count:
        print(f"rigd reprocess: stopped by {signals.name}", file=sys.stderr)
        return 130
    return 1 if counts["failed"] else 0


def _timeout(text: str) -> float:
    """``--timeout SECONDS``: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"takes seconds, a number > 0 (e.g. 600), got {text!r}")
    return value


def add_parser(commands: Any) -> None:
    """``rigd reprocess``'s arguments, on the CLI's subcommands."""
    parser = commands.add_parser(
        "reprocess",
        help="replay run files through a pipeline's processors into new run files",
        description="Replay each run file through the pipeline (its sources replaced by "
        "the file's streams) into a new run file in --out; one Ray task per file with "
        "--address. A failing file never stops the others; the status is 1 if any failed. "
        "Ctrl-C or SIGTERM stops: the file being replayed is sealed and marked failed, the "
        "table of what finished is printed, and the status is 130.",
    )
    parser.add_argument("pipeline", metavar="PIPELINE.yaml")
    parser.add_argument("files", nargs="+", metavar="RUN.h5")
    parser.add_argument(
        "--out",
        default="rigd-reprocessed",
        metavar="DIR",
        help="the directory the new run files go to, made if missing (default: ./rigd-reprocessed)",
    )
    parser.add_argument("--address", help="a Ray address (ray://HOST:PORT, ray:HOST:PORT, ray)")
    parser.add_argument(
        "--timeout",
        type=_timeout,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="how long one file's replay may take; one that takes longer (a processor that "
        f"hangs) is stopped and is a failed row (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--actor-processes",
        action="store_true",
        help="run each file's actors in processes of their own, as a live run does "
        "(default: threads of the file's job, with no start-up cost per file)",
    )
    parser.set_defaults(handler=_cmd_on_any_terminal)
