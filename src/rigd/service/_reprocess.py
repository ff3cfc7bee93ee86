"""``rigd reprocess PIPELINE.yaml RUN.h5...``: run files replayed through a pipeline's processors.

Each run file becomes a new run file (``rigd.pipeline.replay_file``: the
pipeline's sources replaced by ``FilePlayback`` of the stream they recorded,
its recorder writing to ``--out``, the source's metadata, provenance and drop
ledger carried). One job per file: in this process one after the other, or,
with ``--address``, one Ray task per file asking for the pipeline's CPUs and
GPUs, all at once. A file that fails is reported and never stops the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["FileResult", "add_parser", "reprocess"]


@dataclass(frozen=True)
class FileResult:
    """What one file's replay did."""

    file: str
    state: str  # done, failed
    output: str | None = None
    outputs: tuple[str, ...] = ()  # every recorder's file (``output`` is the first)
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None


def _resources(text: str) -> tuple[float, float]:
    actors = yaml.safe_load(text).get("actors") or []
    cpus = sum(float(a.get("num_cpus") or 0) for a in actors)
    gpus = sum(float(a.get("num_gpus") or 0) for a in actors)
    return max(1.0, cpus), gpus


def reprocess(
    pipeline: str | Path,
    files: Sequence[str],
    out_dir: str | Path,
    *,
    address: str | None = None,
    progress: Callable[[int, int, FileResult], None] | None = None,
    actor_processes: bool = False,
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
    """
    from rigd.pipeline import check_replay

    check_replay(pipeline)  # the pipeline's mistakes, once, with its lines: before any file
    text = Path(pipeline).read_text()
    pipeline_path = str(Path(pipeline).resolve())
    out = str(Path(out_dir).resolve())
    Path(out).mkdir(parents=True, exist_ok=True)
    paths = [str(Path(f).resolve()) for f in files]
    # One output per input, never one written twice or over an existing file:
    # inputs of one name (two run.h5, or a file named twice) get -2, -3, ...
    run_ids: list[str] = []
    seen: dict[str, int] = {}
    for path in paths:
        base = f"{Path(path).stem}-reprocessed"
        seen[base] = seen.get(base, 0) + 1
        run_ids.append(base if seen[base] == 1 else f"{base}-{seen[base]}")
    results: dict[int, FileResult] = {}

    def finished(index: int, result: dict[str, Any]) -> None:
        item = FileResult(**result)
        results[index] = item
        if progress is not None:
            progress(len(results), len(paths), item)

    # Imported here: the CLI imports this module at every start, and a Ray task
    # of replay_file imports rigd.pipeline only (not this service).
    from rigd.pipeline import replay_file, replay_outputs

    todo: list[int] = []
    for index, (path, run_id) in enumerate(zip(paths, run_ids, strict=True)):
        there = [Path(out) / name for name in replay_outputs(text, run_id).values()]
        there = [target for target in there if target.exists()]
        if there:
            error = (
                f"FileExistsError: {there[0]} exists; a run file is never overwritten "
                "(choose another --out, or move it)"
            )
            finished(index, asdict(FileResult(path, "failed", error=error)))
        else:
            todo.append(index)

    if address is None:
        from rigd.actors import shutdown

        for index in todo:
            finished(
                index,
                replay_file(
                    text, paths[index], out, False, run_ids[index], actor_processes, pipeline_path
                ),
            )
        shutdown()
    else:
        from rigd.actors import get, init, ray_backend, remote, shutdown, wait

        connected = ray_backend() is not None
        if not connected:
            init(address=address)
        cpus, gpus = _resources(text)
        task = remote(replay_file).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        pending = {
            task.remote(
                text, paths[index], out, True, run_ids[index], actor_processes, pipeline_path
            ): index
            for index in todo
        }
        while pending:
            (ref,), _ = wait(list(pending), num_returns=1)
            index = pending.pop(ref)
            try:
                finished(index, get(ref))
            except Exception as exc:  # noqa: BLE001 - the task's worker died
                error = f"{type(exc).__name__}: {exc}"
                finished(index, asdict(FileResult(paths[index], "failed", error=error)))
        if not connected:
            shutdown()
    return [results[index] for index in range(len(paths))]


def _table(results: Sequence[FileResult]) -> str:
    rows = [("file", "state", "frames", "seconds", "output / error")]
    for r in results:
        rows.append(
            (
                Path(r.file).name,
                r.state,
                str(r.frames),
                f"{r.seconds:.1f}",
                ", ".join(r.outputs) or r.output or r.error or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    )


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


def _cmd(args: argparse.Namespace) -> int:
    def progress(done: int, total: int, result: FileResult) -> None:
        print(f"[{done}/{total}] {result.file}: {result.state}", flush=True)

    # Actor classes import from the current directory too, as with `rigd run`
    # (here, and in the actor processes, which inherit the path; a Ray
    # cluster's workers import what the cluster's nodes have).
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        from rigd.config import load_pipeline

        # Read once as it is, so a wrong file (YAML, keys, an actor class that
        # cannot be imported) is named with its own line and key before any run
        # file is touched. Not planned: its sources (a camera, a TIFF stack)
        # are replaced by the run files' streams and need not be here.
        _check_classes(load_pipeline(Path(args.pipeline)))
    except FileNotFoundError:
        print(f"rigd reprocess: no pipeline file {args.pipeline}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"rigd reprocess: {exc}", file=sys.stderr)
        return 2
    try:
        results = reprocess(
            args.pipeline,
            args.files,
            args.out,
            address=args.address,
            progress=progress,
            actor_processes=args.actor_processes,
        )
    except (OSError, ValueError) as exc:
        print(f"rigd reprocess: {exc}", file=sys.stderr)
        return 2
    print(_table(results))
    failed = sum(r.state != "done" for r in results)
    print(f"{len(results) - failed} done, {failed} failed")
    return 1 if failed else 0


def add_parser(commands: Any) -> None:
    """``rigd reprocess``'s arguments, on the CLI's subcommands."""
    parser = commands.add_parser(
        "reprocess",
        help="replay run files through a pipeline's processors into new run files",
        description="Replay each run file through the pipeline (its sources replaced by "
        "the file's streams) into a new run file in --out; one Ray task per file with "
        "--address. A failing file never stops the others; the status is 1 if any failed.",
    )
    parser.add_argument("pipeline", metavar="PIPELINE.yaml")
    parser.add_argument("files", nargs="+", metavar="RUN.h5")
    parser.add_argument("--out", default="rigd-reprocessed", help="where the new run files go")
    parser.add_argument("--address", help="a Ray address (ray://HOST:PORT, ray:HOST:PORT, ray)")
    parser.add_argument(
        "--actor-processes",
        action="store_true",
        help="run each file's actors in processes of their own, as a live run does "
        "(default: threads of the file's job, with no start-up cost per file)",
    )
    parser.set_defaults(handler=_cmd)
