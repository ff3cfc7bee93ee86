"""``rigd reprocess PIPELINE.yaml RUN.h5...``: run files replayed through a pipeline's processors.

Each run file becomes a new run file: the pipeline's sources are replaced by
``FilePlayback`` of the stream they recorded (``rate: max``), its processors
run as written, and its recorder writes to ``--out``. The new file carries
the source's run metadata, a provenance note (the source file and the
pipeline), and the drop ledger of the streams replayed, reasons kept
(``rigd.storage.carry_ledger``): a reprocessed file of a lossy run does not
look lossless. One job per file: in
this process one after the other, or, with ``--address``, one Ray task per
file asking for the pipeline's CPUs and GPUs, all at once. A file that fails
is reported and never stops the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["FileResult", "add_parser", "replay_pipeline", "reprocess"]

_RECORDER = "HDF5Recorder"
_WAIT_S = 3600.0


@dataclass(frozen=True)
class FileResult:
    """What one file's replay did."""

    file: str
    state: str  # done, failed
    output: str | None = None
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None


def replay_pipeline(text: str, run_file: str, out_dir: str) -> dict[str, Any]:
    """The pipeline (as YAML has it) with its sources replaced by ``run_file``'s streams.

    A source's stream is the name its link to the recorder gives it.

    Raises:
        ValueError: the pipeline has no recorder, or a source that is not recorded.
    """
    config = yaml.safe_load(text)
    actors = config.get("actors") or []
    links = config.get("links") or []
    readers = {link["link"].split("->")[1].split(".")[0].strip() for link in links}
    recorders = {a["name"] for a in actors if str(a.get("class", "")).endswith(_RECORDER)}
    if not recorders:
        raise ValueError("the pipeline has no HDF5Recorder to write the new run file")
    for actor in actors:
        name = actor["name"]
        if name in readers:
            continue
        streams = [
            link["link"].split("->")[1].split(".", 1)[1].strip()
            for link in links
            if link["link"].split("->")[0].strip().startswith(f"{name}.")
            and link["link"].split("->")[1].split(".")[0].strip() in recorders
        ]
        if not streams:
            raise ValueError(
                f"source {name!r} is not recorded, so a run file cannot stand in for it; "
                "link it to the recorder"
            )
        actor.clear()
        actor.update(
            name=name,
            **{"class": "rigd.pipeline.FilePlayback"},
            options={"path": run_file, "stream": streams[0], "rate": "max"},
        )
        for link in links:
            source, target = link["link"].split("->")
            if source.strip().startswith(f"{name}."):
                link["link"] = f"{name}.frames -> {target.strip()}"
    for actor in actors:
        if actor["name"] in recorders:
            options = dict(actor.get("options") or {})
            options.update(directory=out_dir, template="{run_id}.h5")
            actor["options"] = options
        actor.pop("node", None)
    return dict(config)


def _replayed_streams(config: Mapping[str, Any]) -> dict[str, str]:
    """``{new stream: source stream}`` for the streams a replay records straight
    from a ``FilePlayback`` (their frames and ids are the source stream's)."""
    actors = config.get("actors") or []
    played = {
        a["name"]: a["options"]["stream"]
        for a in actors
        if a.get("class") == "rigd.pipeline.FilePlayback"
    }
    recorders = {a["name"] for a in actors if str(a.get("class", "")).endswith(_RECORDER)}
    out: dict[str, str] = {}
    for link in config.get("links") or []:
        source, target = (side.strip() for side in link["link"].split("->"))
        actor, _, _ = source.partition(".")
        into, _, stream = target.partition(".")
        if actor in played and into in recorders:
            out[stream] = played[actor]
    return out


def _provenance(run_file: str, pipeline: str, name: str, before: Any) -> dict[str, str]:
    note = f"rigd reprocess of {run_file} through pipeline {name!r}"
    if pipeline:
        note += f" ({pipeline})"
    if before:
        note += f"; before that: {before}"
    return {"reprocessed_from": run_file, "reprocessed_pipeline": name, "provenance": note}


def _resources(text: str) -> tuple[float, float]:
    actors = yaml.safe_load(text).get("actors") or []
    cpus = sum(float(a.get("num_cpus") or 0) for a in actors)
    gpus = sum(float(a.get("num_gpus") or 0) for a in actors)
    return max(1.0, cpus), gpus


def _replay_one(
    text: str,
    run_file: str,
    out_dir: str,
    in_task: bool = False,
    run_id: str | None = None,
    actor_processes: bool = False,
    pipeline_path: str = "",
) -> dict[str, Any]:
    """One file (in this process, or in a Ray task): the result as a dict.

    Its actors run as threads of this process (``run_inline``), or, with
    ``actor_processes``, as a live run's (a process each, rigd's runtime)."""
    from rigd.actors import run_locally
    from rigd.config import load_pipeline
    from rigd.pipeline import Pipeline, plan_pipeline, run_inline
    from rigd.storage import carry_ledger, run_metadata

    if in_task:
        run_locally()  # a Ray task's pipeline: this node's processes and rings
    start = time.monotonic()
    try:
        part = replay_pipeline(text, run_file, out_dir)
        pfile = load_pipeline(f"<{run_file}>", text=yaml.safe_dump(part, sort_keys=False))
        run_id = run_id or f"{Path(run_file).stem}-reprocessed"
        # The new file carries the source's metadata and says where it came from.
        source = str(Path(run_file).resolve())
        metadata = run_metadata(source)
        metadata.update(
            _provenance(
                source, pipeline_path, str(part.get("name", "")), metadata.get("provenance")
            )
        )
        streams = _replayed_streams(part)
        if not actor_processes:
            inline = run_inline(plan_pipeline(pfile), run_id, metadata, _WAIT_S)
            files = inline["files"]
            if files:
                carry_ledger(source, files[0], streams)
            return asdict(
                FileResult(
                    run_file,
                    "done",
                    files[0] if files else None,
                    sum(inline["frames"].values()),
                    time.monotonic() - start,
                )
            )
        pipeline = Pipeline(plan_pipeline(pfile), run_id=run_id, metadata=metadata)
        pipeline.start()
        try:
            finished = pipeline.wait(_WAIT_S)
        finally:
            report = pipeline.stop()
        if not finished or report.state != "stopped":
            raise RuntimeError(report.failure or "the replay did not finish")
        if report.files:
            carry_ledger(source, report.files[0], streams)
        return asdict(
            FileResult(
                run_file,
                "done",
                report.files[0] if report.files else None,
                sum(report.frames.values()),
                time.monotonic() - start,
            )
        )
    except Exception as exc:  # noqa: BLE001 - one file's failure is its row in the table
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        return asdict(FileResult(run_file, "failed", seconds=time.monotonic() - start, error=error))


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

    todo: list[int] = []
    for index, (path, run_id) in enumerate(zip(paths, run_ids, strict=True)):
        target = Path(out) / f"{run_id}.h5"
        if target.exists():
            error = (
                f"FileExistsError: {target} exists; a run file is never overwritten "
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
                _replay_one(
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
        task = remote(_replay_one).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
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
                r.output or r.error or "",
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
