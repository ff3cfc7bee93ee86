"""The ``rigd`` command line. The only module that configures logging."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rigd.storage import RunSummary

__all__ = ["main"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from rigd.service._demo import run_demo

    run_demo()
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from rigd.service._run import parse_meta, run_pipeline

    try:
        metadata = parse_meta(args.meta)
    except ValueError as exc:
        print(f"rigd run: {exc}", file=sys.stderr)
        return 2
    return run_pipeline(args.pipeline, run_id=args.run_id, metadata=metadata)


def _each_file(command: str, files: Sequence[str], describe: Callable[[str], str]) -> int:
    """Print ``describe(path)`` for each file; a file that fails is named on
    stderr and makes the status 1, and the others still go."""
    status = 0
    for path in files:
        try:
            print(describe(path))
        except (OSError, ValueError) as exc:
            print(f"rigd {command}: {path}: {exc}", file=sys.stderr)
            status = 1
    return status


def _cmd_gpus(args: argparse.Namespace) -> int:
    from rigd.gpu import inventory

    try:
        gpus = inventory()
    except ValueError as exc:
        print(f"rigd gpus: {exc}", file=sys.stderr)
        return 2
    if not gpus:
        print("no GPUs (NVML sees none, or it is not installed)")
        return 0
    for gpu in gpus:
        gib = 1024**3
        note = " (simulated)" if gpu.simulated else ""
        print(
            f"{gpu.index}: {gpu.name}{note}  {gpu.uuid}  {gpu.pci_bus_id}  "
            f"{gpu.memory_free / gib:.1f} of {gpu.memory_total / gib:.1f} GiB free"
        )
        for mig in gpu.mig:
            print(f"   MIG {mig.index}: {mig.uuid}  {mig.memory_total / gib:.1f} GiB")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from rigd.storage import inspect_run

    return _each_file("inspect", args.files, lambda path: format_summary(inspect_run(path)))


def _cmd_recover(args: argparse.Namespace) -> int:
    from rigd.storage import recover_run

    def recover(path: str) -> str:
        report = recover_run(path)
        frames = ", ".join(f"{name}: {n} frames" for name, n in report.frames.items())
        if report.repaired:
            return f"{path}: recovered ({frames})"
        return f"{path}: already {report.run_state}, left as it is ({frames})"

    return _each_file("recover", args.files, recover)


def format_summary(summary: RunSummary) -> str:
    """The text ``rigd inspect`` prints for one run file."""
    lines = [
        f"{summary.path}",
        f"  run {summary.run_id}: {summary.run_state}",
        f"  started {summary.start_time or '?'}, stopped {summary.stop_time or '-'}"
        f" on {summary.host or '?'} (rigd {summary.rigd_version or '?'})",
    ]
    for s in summary.streams:
        shape = "x".join(str(n) for n in s.shape)
        lines.append(
            f"  stream {s.name}: {s.frames} frames of {shape} {s.dtype}"
            f"{', ' + s.compression if s.compression else ''}, {s.duration_s:.2f} s"
            f" at {s.rate_hz:.1f} Hz"
        )
        if s.first_frame_id is not None:
            lines.append(f"    frame ids {s.first_frame_id}..{s.last_frame_id}")
        gaps = len([entry for entry in s.ledger if entry[1]])
        lines.append(f"    dropped {s.dropped} frame(s) in {gaps} gap(s)")
        for first, count, reason in s.ledger[:10]:
            what = f"ids {first}..{first + count - 1}" if count else f"at id {first}"
            lines.append(f"      {what}: {reason}")
        if len(s.ledger) > 10:
            lines.append(f"      ... {len(s.ledger) - 10} more ledger entries")
        if s.latency_p50_ms is not None:
            lines.append(
                f"    latency to disk p50 {s.latency_p50_ms:.2f} ms, p99 {s.latency_p99_ms:.2f} ms"
            )
    if summary.metadata:
        lines.append("  metadata:")
        lines.extend(f"    {k} = {v!r}" for k, v in summary.metadata.items())
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rigd", description="rigd: a GPU-aware acquisition service for lab rigs"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run a pipeline in the foreground (the bundled demo without a file)",
        description="Run a pipeline until its sources end or Ctrl-C (a second Ctrl-C "
        "forces). With no file: a simulated 512x512 camera at 200 fps for 10 s, its "
        "frame statistics, both recorded under ./rigd-data/.",
    )
    run.add_argument("pipeline", nargs="?", metavar="PIPELINE.yaml")
    run.add_argument("--run-id", help="the run's id (default: the UTC start time)")
    run.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run metadata stored in the run file (repeatable)",
    )
    run.set_defaults(handler=_cmd_run)
    demo = commands.add_parser("demo", help="run a short demo of the actor API")
    demo.set_defaults(handler=_cmd_demo)
    gpus = commands.add_parser("gpus", help="list the GPUs (NVML's inventory)")
    gpus.set_defaults(handler=_cmd_gpus)
    inspect = commands.add_parser(
        "inspect", help="summarise run files: streams, frames, rate, drops, state, metadata"
    )
    inspect.add_argument("files", nargs="+", metavar="FILE.h5")
    inspect.set_defaults(handler=_cmd_inspect)
    recover = commands.add_parser(
        "recover", help="repair run files a crash left unsealed, and mark them recovered"
    )
    recover.add_argument("files", nargs="+", metavar="FILE.h5")
    recover.set_defaults(handler=_cmd_recover)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    """Run the ``rigd`` command and exit with its status."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        sys.exit(2)
    sys.exit(handler(args))
