"""``rigd run --address ray://HOST:PORT PIPELINE.yaml``: a pipeline across a Ray cluster.

The foreground run of ``rigd run``, for a pipeline file whose actors name
their nodes (``node:``): ``rigd.init(address=...)`` joins the cluster, a
``ClusterPipeline`` places every node's part at once (one placement group)
and bridges the links between nodes. Ctrl-C, SIGTERM (``kill``,
``timeout``, systemd) or SIGHUP (the terminal closed, the SSH session lost;
``_stop_signals.STOP_SIGNALS``) stops the run cleanly (every node drains its links,
files are sealed on their nodes), as for a local ``rigd run``; one during
the start stops the run as soon as it started; a Ctrl-C while the nodes
stop (or a failed run stops the others) forces: every node supervisor is
killed, the files are left unsealed (``rigd recover``). The exit status is ``rigd
run``'s: 0 for a run that ended well, 1 for a failed one (a lost node, a
failed start), 2 for a pipeline file, address or port range that cannot be
used, 130 after Ctrl-C, SIGTERM or SIGHUP.

Before the cluster is joined, the file is planned on this driver (its actor
classes import from the current directory, as locally; a file that cannot be
used exits 2, every problem named) and the run id is claimed in this driver's
data directory (the first recorder's: its log, ``_run_start.claim_for_run``),
as ``rigd run`` claims it locally: an id in use or used before is refused
(exit 2, nothing started), an automatic one that is taken gets ``-2``, ``-3``.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from rigd._exceptions import PipelineFailedError, PipelineFileError, RigdError
from rigd.actors import init, shutdown
from rigd.pipeline import ClusterPipeline, plan_pipeline, run_log_path
from rigd.service._run_signals import unfailing
from rigd.service._run_start import (
    _RunIdRefusedError,
    claim_for_run,
    import_from_cwd,
    refuse_run_id,
    say_file_problems,
)
from rigd.service._stop_signals import handling_stop_signals

__all__ = ["parse_port_range", "run_on_cluster"]

_WAIT_S = 0.5


class ClusterStop:
    """The stop requests of one ``rigd run --address``, as its handler of
    ``STOP_SIGNALS`` (SIGINT, SIGTERM, SIGHUP; ``handling_stop_signals``).

    The first of any sets ``stop`` (a clean stop). Once ``stopping`` is set
    (the stop has been said), a SIGINT raises ``KeyboardInterrupt`` (out of
    the stop's wait: every node's supervisor is killed); a SIGTERM or SIGHUP
    never forces.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.stopping = threading.Event()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler.

        Raises:
            KeyboardInterrupt: a SIGINT once ``stopping`` is set.
        """
        if signum == signal.SIGINT and self.stopping.is_set():
            raise KeyboardInterrupt
        self.stop.set()


def run_on_cluster(
    path: str | None,
    address: str,
    *,
    run_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    bridge_ports: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run ``path`` on the Ray cluster at ``address``; return the exit status.

    ``metadata`` goes into every node's run file; ``bridge_ports`` (``FIRST-LAST``)
    is the tcp port range the bridges bind (default: ephemeral ports). The run id
    is claimed here first (see the module's text): a refused one exits 2."""
    if path is None:
        print("rigd run --address: name a pipeline file whose actors say their node:", file=err)
        return 2
    source = Path(path)
    if not source.is_file():
        print(f"rigd run: no pipeline file {source}", file=err)
        return 2
    try:
        port_range = parse_port_range(bridge_ports)
    except ValueError as exc:
        print(f"rigd run: {exc}", file=err)
        return 2
    import_from_cwd()  # actor classes of the user's own, as locally (on this driver)
    try:
        plan = plan_pipeline(source)  # on this driver, before the cluster is joined
    except PipelineFileError as exc:
        return say_file_problems(source, exc, err)
    if refuse_run_id(run_id, err):
        return 2
    chosen = run_id or time.strftime("%Y%m%dT%H%M%S")  # as ClusterPipeline's
    try:  # in this driver's data directory, before anything starts on the cluster
        claim = claim_for_run(run_log_path(plan, chosen), chosen, automatic=run_id is None, err=err)
    except _RunIdRefusedError:
        return 2
    used = False
    try:
        status, used = _run_claimed(
            source,
            address,
            claim.run_id if claim is not None else chosen,
            metadata,
            port_range,
            unfailing(out),  # a closed terminal (SIGHUP) fails every write to it: the
            unfailing(err),  # stop and the files come first
        )
    finally:
        if claim is not None:
            # A run that never started on the cluster left no file: its id is given back.
            claim.release(keep=used)
    return status


def _run_claimed(
    source: Path,
    address: str,
    run_id: str,
    metadata: Mapping[str, Any] | None,
    port_range: tuple[int, int] | None,
    out: TextIO,
    err: TextIO,
) -> tuple[int, bool]:
    """Join the cluster, run ``source`` there as ``run_id`` (claimed); the exit status,
    and whether the run id was used (files made on the nodes)."""
    try:
        init(address=address)
    except ConnectionError as exc:  # names the address and what to give instead
        print(f"rigd run: {exc}", file=err)
        return 2, False
    except (RigdError, ValueError) as exc:
        print(f"rigd run: cannot join the cluster at {address}: {exc}", file=err)
        return 2, False
    requests = ClusterStop()
    stop, stopping = requests.stop, requests.stopping  # stopping: said so, a Ctrl-C forces
    # After init: a Ray driver's ray.init puts Ray's own SIGTERM handler in (it ends the
    # driver at once, and every node's file is left unsealed); rigd's stops cleanly.
    try:
        with handling_stop_signals(requests.handle):
            pipeline = ClusterPipeline(
                source, run_id=run_id, metadata=metadata, port_range=port_range
            )
            try:
                pipeline.start()
            except (RigdError, ValueError) as exc:
                print(
                    f"rigd run: pipeline {source} could not start on the cluster: {exc}", file=err
                )
                # A part that failed to start sealed its node's files (aborted): used.
                used = isinstance(exc, PipelineFailedError)
                return (1 if isinstance(exc, RigdError) else 2), used
            print(f"rigd run: running {source} on the cluster at {address}; Ctrl-C stops", file=err)
            while not stop.is_set() and not pipeline.wait(_WAIT_S):
                pass
            try:
                stopping.set()  # before it is said: a Ctrl-C once it is read forces
                if stop.is_set():
                    print(
                        "rigd run: stopping on every node (draining the links); "
                        "Ctrl-C again forces",
                        file=err,
                    )
                elif pipeline.state == "failed":
                    print(f"rigd run: {pipeline.failure}; stopping the other nodes", file=err)
                report = pipeline.stop()
            except KeyboardInterrupt:
                pipeline.kill()
                print(
                    "rigd run: forced: every node's supervisor killed, their files left unsealed "
                    "(rigd recover repairs them)",
                    file=err,
                )
                return 130, True
    finally:
        shutdown()
    print(f"run {report.run_id}: {report.state}", file=out)
    for stream, frames in sorted(report.frames.items()):
        print(f"  {stream}: {frames} frames, {report.dropped.get(stream, 0)} dropped", file=out)
    for file in report.files:
        print(f"  file: {file}", file=out)
    if report.failure:
        print(f"  failure: {report.failure}", file=out)
        return 1, True
    return (130 if stop.is_set() else 0), True


def parse_port_range(text: str | None) -> tuple[int, int] | None:
    """``--bridge-ports FIRST-LAST`` as ``(first, last)``; ``None`` stays ``None``.

    Raises:
        ValueError: not two port numbers, 1 <= FIRST <= LAST <= 65535.
    """
    if text is None:
        return None
    first, sep, last = text.partition("-")
    if sep and first.strip().isdigit() and last.strip().isdigit():
        low, high = int(first), int(last)
        if 1 <= low <= high <= 65535:
            return low, high
    raise ValueError(
        f"--bridge-ports takes a tcp port range FIRST-LAST (e.g. 47100-47199), got {text!r}"
    )
