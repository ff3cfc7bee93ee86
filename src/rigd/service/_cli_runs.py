"""``rigd pause``, ``rigd resume``, ``rigd logs`` (the daemon's run) and ``rigd convert``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from rigd.service._cli_client import client_call

__all__ = ["add_run_commands"]


def _cmd_pause(args: argparse.Namespace) -> int:
    answer = client_call("pause", args, "pause")
    print(
        f"run {answer['run_id']} paused (it resumes on its own after {answer['max_pause_s']:g} s)"
    )
    return 0


def _cmd_resume(args: argparse.Namespace) -> int:
    answer = client_call("resume", args, "resume")
    print(f"run {answer['run_id']} resumed after {answer['paused_s']:.1f} s paused")
    return 0


def _cmd_logs(args: argparse.Namespace) -> int:
    answer = client_call("logs", args, "logs", args.run_id, args.actor, args.tail)
    for line in answer["lines"]:
        print(line)
    return 0


def _cmd_convert(args: argparse.Namespace) -> int:
    from rigd.config import PipelineFileError, improv_pipeline_text

    try:
        text = Path(args.config).read_text()
    except OSError as exc:
        print(f"rigd convert: cannot read {args.config}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        converted = improv_pipeline_text(args.config, text, check_modules=True)
    except PipelineFileError as exc:
        print(f"rigd convert: {args.config} has {len(exc.problems)} problem(s):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    if converted is None:
        print(
            f"rigd convert: {args.config} is not an improv config file (its 'actors' is not a "
            "mapping of name: {package, class}); a rigd pipeline file needs no conversion",
            file=sys.stderr,
        )
        return 2
    sys.stdout.write(converted)
    return 0


def add_run_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    client: Callable[[str, str], argparse.ArgumentParser],
) -> None:
    """Add the commands above to ``rigd``'s subcommands (``client`` makes a daemon client's)."""
    pause = client("pause", "pause the current run: sources hold, readers drain")
    pause.set_defaults(handler=_cmd_pause)
    resume = client("resume", "resume the paused run")
    resume.set_defaults(handler=_cmd_resume)
    logs = client("logs", "a run's log lines (every actor's, prefixed with its name)")
    logs.add_argument("run_id", nargs="?", default="current", metavar="RUN_ID")
    logs.add_argument("--actor", help="only this actor's lines")
    logs.add_argument("--tail", type=int, help="only the last N lines")
    logs.set_defaults(handler=_cmd_logs)
    convert = commands.add_parser(
        "convert",
        help="print the rigd pipeline file an improv config file means",
        description="Convert improv's config file (actors with package/class, connections "
        "Actor.q_out: [Actor.q_in]) into a rigd pipeline file, on stdout. rigd run and the "
        "daemon also load improv's files directly.",
    )
    convert.add_argument("config", metavar="IMPROV.yaml")
    convert.set_defaults(handler=_cmd_convert)
