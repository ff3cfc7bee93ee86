"""The ``rigd`` command line. The only module that configures logging."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from rigd.service._cli_client import client_call
from rigd.service._cli_runs import add_run_commands
from rigd.service._reprocess import add_parser as add_reprocess_parser
from rigd.service._summary import format_summary

if TYPE_CHECKING:
    pass

__all__ = ["main"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from rigd.service._demo import run_demo

    run_demo()
    return 0


def _metadata(command: str, args: argparse.Namespace) -> dict[str, Any]:
    """The ``--meta key=value`` options; a malformed one exits 2."""
    from rigd.service._run import parse_meta

    try:
        return parse_meta(args.meta)
    except ValueError as exc:
        print(f"rigd {command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _cmd_run(args: argparse.Namespace) -> int:
    from rigd.service._run import run_pipeline

    metadata = _metadata("run", args)
    if args.bridge_ports is not None and args.address is None:
        print("rigd run: --bridge-ports is for cluster runs; add --address", file=sys.stderr)
        return 2
    if args.console is not None:
        from rigd.service._run_console import run_with_console

        return run_with_console(args.pipeline, args.console, run_id=args.run_id, metadata=metadata)
    if args.address is not None:
        from rigd.service._cli_address import not_a_cluster_address
        from rigd.service._run_cluster import run_on_cluster

        if (wrong := not_a_cluster_address(args.address)) is not None:
            print(f"rigd run: {wrong}; nothing was started", file=sys.stderr)
            return 2

        return run_on_cluster(
            args.pipeline,
            args.address,
            run_id=args.run_id,
            metadata=metadata,
            bridge_ports=args.bridge_ports,
        )
    return run_pipeline(args.pipeline, run_id=args.run_id, metadata=metadata)


def _each_file(command: str, files: Sequence[str], describe: Callable[[str], str]) -> int:
    """Print ``describe(path)`` for each file; a file that fails is named on
    stderr and makes the status 1, and the others still go."""
    status = 0
    for path in files:
        try:
            print(describe(path))
        except BrokenPipeError:
            raise  # the reader left: main ends quietly
        except (OSError, ValueError) as exc:
            print(f"rigd {command}: {path}: {exc}", file=sys.stderr)
            status = 1
    return status


def _cmd_gpus(args: argparse.Namespace) -> int:
    """The daemon's GPUs and what it placed on each; without a daemon, the inventory."""
    import dataclasses

    from rigd._address import find_daemon
    from rigd.gpu import inventory
    from rigd.service._client import ApiError, Client
    from rigd.service._gpus import format_gpu_report

    if args.url or find_daemon() is not None:
        try:
            report = Client.find(args.url, args.token_file).request("GET", "/v1/gpus")
        except ApiError as exc:
            print(f"rigd gpus: {exc}", file=sys.stderr)
            return 1
        print(format_gpu_report(report))
        return 0
    try:
        gpus = inventory()
    except ValueError as exc:
        print(f"rigd gpus: {exc}", file=sys.stderr)
        return 2
    local = [dataclasses.asdict(gpu) for gpu in gpus]
    print(
        format_gpu_report(
            local, note="(no rigd daemon runs here: nothing is placed)" if local else ""
        )
    )
    return 0


def _cmd_cameras(args: argparse.Namespace) -> int:
    """The GenICam cameras: the daemon's view when one runs, else this process's own."""
    from rigd._address import find_daemon
    from rigd.service._cameras import CamerasUnavailableError, camera_list, format_camera_report
    from rigd.service._client import ApiError, Client

    if args.url or find_daemon() is not None:
        try:
            cameras = Client.find(args.url, args.token_file).request("GET", "/v1/cameras")
        except ApiError as exc:
            print(f"rigd cameras: {exc}", file=sys.stderr)
            return 1
    else:
        try:
            cameras = camera_list()
        except CamerasUnavailableError as exc:
            print(f"rigd cameras: {exc}", file=sys.stderr)
            return 2
    print(format_camera_report(cameras))
    return 0


def _cmd_selftest(args: argparse.Namespace) -> int:
    from rigd.service._selftest_run import run_selftest

    return run_selftest(
        args.pipeline, seconds=args.seconds, minutes=args.minutes, data_dir=args.data_dir
    )


def _cmd_serve(args: argparse.Namespace) -> int:
    from rigd.service._serve import serve

    return serve(args.config)


def _cmd_status(args: argparse.Namespace) -> int:
    from rigd.service._client import format_status

    status = client_call("status", args, "status")
    print(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def _cmd_load(args: argparse.Namespace) -> int:
    info = client_call("load", args, "load", args.pipeline)
    print(f"loaded pipeline {info['name']} ({len(info['actors'])} actors) from {info['source']}")
    return 0


def _cmd_start(args: argparse.Namespace) -> int:
    run = client_call("start", args, "start", args.run_id or None, _metadata("start", args))
    print(f"run {run['run_id']} {run['state']}: {', '.join(run['files']) or 'no files'}")
    return 0


def _cmd_stop(args: argparse.Namespace) -> int:
    run = client_call("stop", args, "stop")
    frames = ", ".join(
        f"{stream}: {n} frames, {run['dropped'].get(stream, 0)} dropped"
        for stream, n in run["frames"].items()
    )
    print(f"run {run['run_id']} {run['state']} after {run['duration_s']} s ({frames})")
    for path in run["files"]:
        print(f"  file: {path}")
    return 0 if run["state"] == "complete" else 1


def _cmd_trigger(args: argparse.Namespace) -> int:
    answer = client_call("trigger", args, "trigger", args.label)
    for name, taken in answer["recorders"].items():
        print(f"{name}: {'triggered' if taken else 'not armed: trigger ignored'}")
    return 0 if all(answer["recorders"].values()) else 1


def _cmd_inspect(args: argparse.Namespace) -> int:
    from rigd.storage import inspect_run

    return _each_file("inspect", args.files, lambda path: format_summary(inspect_run(path)))


def _cmd_export(args: argparse.Namespace) -> int:
    from rigd.storage import export_nwb

    metadata = _metadata("export", args)
    imaging: dict[str, str] = {}
    for item in args.imaging:
        stream, sep, kind = item.partition("=")
        if not sep:
            print(f"rigd export: --imaging takes STREAM=KIND, got {item!r}", file=sys.stderr)
            return 2
        imaging[stream] = kind
    try:
        out = export_nwb(
            args.file,
            args.nwb,
            link=not args.copy,
            compression=args.gzip,
            metadata=metadata,
            imaging=imaging,
        )
    except (OSError, ValueError, ImportError) as exc:
        print(f"rigd export: {args.file}: {exc}", file=sys.stderr)
        return 1
    how = "frames copied" if args.copy else f"frames linked to {args.file}; keep both files"
    print(f"{out}: NWB ({how})")
    return 0


def _cmd_recover(args: argparse.Namespace) -> int:
    from rigd.storage import recover_run

    def recover(path: str) -> str:
        report = recover_run(path)
        frames = ", ".join(f"{name}: {n} frames" for name, n in report.frames.items())
        if report.repaired:
            return f"{path}: recovered ({frames})"
        return f"{path}: already {report.run_state}, left as it is ({frames})"

    return _each_file("recover", args.files, recover)


def _add_meta(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="run metadata stored in the run file (repeatable)",
    )


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
    run.add_argument(
        "pipeline",
        nargs="?",
        metavar="PIPELINE",
        help="a YAML file, or a bundled pipeline's name (demo), as rigd load takes it",
    )
    run.add_argument("--run-id", help="the run's id (default: the UTC start time)")
    run.add_argument(
        "--console",
        type=int,
        metavar="PORT",
        help="serve the console at http://127.0.0.1:PORT/console during the run",
    )
    run.add_argument(
        "--address",
        metavar="ray://HOST:PORT",
        help="run across a Ray cluster's nodes (each actor names its node:): ray://HOST:PORT "
        "(Ray Client), ray:HOST:PORT (GCS) or ray; see Clusters",
    )
    run.add_argument(
        "--bridge-ports",
        metavar="FIRST-LAST",
        help="with --address: the tcp ports the bridges between nodes bind (default: "
        "ephemeral ports, chosen on each sending node)",
    )
    _add_meta(run)
    run.set_defaults(handler=_cmd_run)
    demo = commands.add_parser("demo", help="run a short demo of the actor API")
    demo.set_defaults(handler=_cmd_demo)
    serve = commands.add_parser(
        "serve",
        help="run the daemon: the REST API, the supervisor and the actor runtime",
        description="Run the rigd daemon until SIGTERM, SIGHUP or Ctrl-C (a run under way is "
        "stopped cleanly and its files sealed). Without --config: loopback, port 8470, "
        "files under $STATE_DIRECTORY or ~/.local/state/rigd.",
    )
    serve.add_argument("--config", metavar="FILE.yaml", help="the service config")
    serve.set_defaults(handler=_cmd_serve)

    selftest = commands.add_parser(
        "selftest",
        help="certify this PC for a pipeline: disk, space, /dev/shm, CPU, GPUs, cameras, "
        "clock, then a short run",
        description="Check that this PC can hold the rate a pipeline needs (the bundled demo "
        "without a file), in under a minute. Prints PASS/FAIL per check with its figure and "
        "fix; exits 0 if none failed, 1 if one did, 2 for a wrong pipeline file.",
    )
    selftest.add_argument("pipeline", nargs="?", metavar="PIPELINE.yaml")
    selftest.add_argument(
        "--seconds", type=float, default=5.0, help="the test run's length (0: no run)"
    )
    selftest.add_argument(
        "--minutes", type=float, default=60.0, help="the planned run length the disk must hold"
    )
    selftest.add_argument(
        "--data-dir", default="rigd-data", help="where runs are recorded (default ./rigd-data)"
    )
    selftest.set_defaults(handler=_cmd_selftest)

    def client(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("--url", help="the daemon's API (default: the local daemon's)")
        sub.add_argument("--token-file", help="its token file (default: the local daemon's)")
        return sub

    status = client("status", "the daemon's state, pipeline, run, actors and links")
    status.add_argument("--json", action="store_true", help="print the raw JSON")
    status.set_defaults(handler=_cmd_status)
    load = client("load", "load a pipeline into the daemon (a file here, or a name it knows)")
    load.add_argument("pipeline", metavar="PIPELINE", help="a YAML file, or a pipeline's name")
    load.set_defaults(handler=_cmd_load)
    start = client("start", "start a run of the loaded pipeline")
    start.add_argument("--run-id", help="the run's id (a retried start with it starts nothing)")
    _add_meta(start)
    start.set_defaults(handler=_cmd_start)
    trigger = client("trigger", "a soft trigger for the run's triggered recorders")
    trigger.add_argument("--label", default="", help="stored with the event (64 characters)")
    trigger.set_defaults(handler=_cmd_trigger)
    add_run_commands(commands, client)
    stop = client("stop", "stop the current run cleanly (files sealed)")
    stop.set_defaults(handler=_cmd_stop)
    gpus = client("gpus", "list the GPUs and what is placed on each")
    gpus.set_defaults(handler=_cmd_gpus)
    cameras = client(
        "cameras", "list the GenICam cameras (GigE Vision, USB3 Vision): id, model, serial, address"
    )
    cameras.set_defaults(handler=_cmd_cameras)
    inspect = commands.add_parser(
        "inspect", help="summarise run files: streams, frames, rate, drops, state, metadata"
    )
    inspect.add_argument("files", nargs="+", metavar="FILE.h5")
    export = commands.add_parser(
        "export",
        help="export a run file to NWB (Neurodata Without Borders)",
        description="Write a sealed run file as NWB: camera streams as ImageSeries (or "
        "OnePhotonSeries/TwoPhotonSeries with --imaging), records as TimeSeries, the drop "
        "ledger as the intervals table dropped_frames. Session and subject fields come from "
        "the run metadata, or --meta: session_description, subject_id, species, age (ISO "
        "8601, P90D) are required; experimenter, institution, lab, sex, strain, ... are used.",
    )
    export.add_argument("file", metavar="RUN.h5")
    export.add_argument("--nwb", required=True, metavar="OUT.nwb", help="the NWB file to write")
    export.add_argument(
        "--copy", action="store_true", help="copy the frames in (default: link to RUN.h5)"
    )
    export.add_argument("--gzip", action="store_true", help="with --copy, gzip the frames")
    export.add_argument(
        "--imaging",
        action="append",
        default=[],
        metavar="STREAM=KIND",
        help="a stream of microscope images: one_photon or two_photon (repeatable)",
    )
    _add_meta(export)
    export.set_defaults(handler=_cmd_export)
    inspect.set_defaults(handler=_cmd_inspect)
    recover = commands.add_parser(
        "recover", help="repair run files a crash left unsealed, and mark them recovered"
    )
    recover.add_argument("files", nargs="+", metavar="FILE.h5")
    recover.set_defaults(handler=_cmd_recover)
    add_reprocess_parser(commands)
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
    try:
        status = handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:
        # The reader left (`rigd status | head`): end quietly, as Unix tools do on
        # SIGPIPE (Python's own advice: point stdout at /dev/null so that the
        # interpreter's last flush at exit cannot fail again).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(128 + signal.SIGPIPE)
    sys.exit(status)
