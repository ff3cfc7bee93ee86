"""``rigd run [PIPELINE.yaml]``: one pipeline in the foreground, with live progress.

Runs until the sources end or Ctrl-C. The first Ctrl-C, SIGTERM or SIGHUP stops
cleanly (sources first, every lossless reader drains, files sealed); a
Ctrl-C once it says it is stopping forces (actors killed, run files
repaired); signals that arrive together are one request (``_run_signals``).
Progress goes to stderr: one line rewritten in place on a terminal, plain
lines every few seconds otherwise. The summary at the end goes to stdout.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from rigd import actors
from rigd._exceptions import NotFoundError, PipelineFailedError
from rigd.config import BUNDLED_PIPELINES, PipelineFileError
from rigd.pipeline import Pipeline, PipelineStatus, RunReport, plan_pipeline, run_log_path
from rigd.service._pipeline_names import run_pipeline_file
from rigd.service._run_report import format_progress, format_report
from rigd.service._run_resources import unmet_resources
from rigd.service._run_signals import STOP_SIGNALS, Interrupts, unfailing
from rigd.service._run_start import (
    _RunIdRefusedError,
    claim_for_run,
    import_from_cwd,
    refuse_run_id,
    say_file_problems,
)
from rigd.service._run_unused import release_unrecorded
from rigd.storage import check_metadata

__all__ = ["DEMO_PIPELINE", "format_progress", "format_report", "run_pipeline"]

DEMO_PIPELINE = BUNDLED_PIPELINES / "demo.yaml"
_TTY_EVERY_S = 0.5
_PLAIN_EVERY_S = 2.0
#: A paced source below 90% of its rate this long (seconds) is warned of as slow.
_SLOW_FOR_S = 2.0
#: Seconds a clean stop gives the readers, in all, to drain their inputs (then
#: each one still reading is stopped anyway).
DRAIN_S = 60.0


def run_pipeline(
    path: str | None,
    *,
    run_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run a pipeline (the bundled demo when ``path`` is None): a file, or a pipeline's
    name as ``rigd load`` takes it (``_pipeline_names``); return the exit status."""
    try:
        source = run_pipeline_file(path) if path else DEMO_PIPELINE
    except NotFoundError as exc:
        print(f"rigd run: {exc}; nothing was started", file=err)
        return 2
    if path and not os.path.isfile(path):  # a name, looked up as `rigd load` does
        print(f"rigd run: no file {path} here: running the pipeline {source}", file=err)
    import_from_cwd()  # actor classes of the user's own, as with `python -m`
    try:
        plan = plan_pipeline(source)
        # What this machine can never give (rigd run's runtime is rigd.init()'s).
        if unmet := unmet_resources(plan):
            raise PipelineFileError(unmet)
    except FileNotFoundError:
        print(f"rigd run: no pipeline file {source}", file=err)
        return 2
    except PipelineFileError as exc:
        return say_file_problems(source, exc, err)

    if refuse_run_id(run_id, err):
        return 2
    try:
        check_metadata(dict(metadata or {}))  # as the run file will store it (as the daemon)
    except ValueError as exc:
        print(f"rigd run: --meta: {exc}; nothing was started", file=err)
        return 2
    pipeline = Pipeline(plan, run_id=run_id, metadata=metadata)  # starts nothing yet
    log = run_log_path(plan, pipeline.run_id)
    try:  # claimed here, before anything starts; taken, an automatic id gets -2, -3, ...
        claim = claim_for_run(log, pipeline.run_id, automatic=run_id is None, err=err)
    except _RunIdRefusedError:
        return 2
    if claim is not None and claim.run_id != pipeline.run_id:  # starts nothing yet
        pipeline = Pipeline(plan, run_id=claim.run_id, metadata=metadata)
    report: RunReport | None = None
    try:
        status, report = _run(pipeline, source, out, err)
    finally:
        if claim is not None:
            # A start that ended before anything was logged, and left no file, gives
            # its id back (``_run_unused`` removed the log of one that logged).
            claim.release(keep=report is not None and bool(report.files))
    return status


def _run(pipeline: Pipeline, source: Path, out: TextIO, err: TextIO) -> tuple[int, RunReport]:
    """Start ``pipeline`` (``source``'s), follow it to its end, print the summary;
    the exit status and the report."""
    plan = pipeline.plan
    interrupts = Interrupts()  # signals that arrive together are one request
    # SIGTERM (systemd, `timeout`, kill) and SIGHUP (the terminal closed) stop
    # cleanly too, as a first Ctrl-C does.
    previous = {sig: signal.signal(sig, interrupts.handle) for sig in STOP_SIGNALS}
    # A closed terminal fails every write to it: the stop and the files come first.
    out, err = unfailing(out), unfailing(err)
    try:
        print(f"rigd run: starting pipeline {plan.name!r} from {source}", file=err)
        try:
            # During the start any Ctrl-C or SIGTERM ends it at once: there is
            # nothing to drain yet, and an actor's setup may never return.
            interrupts.starting = True
            pipeline.start()
        except KeyboardInterrupt:
            print("rigd run: start interrupted; killing the actors and sealing run files", file=err)
            report = _released(pipeline.kill(), err)
            print(format_report(report, forced=True, recorders=plan.recorders), file=out)
            return 130, report
        except Exception as exc:  # noqa: BLE001 - an actor's own error: say it, exit 1
            print(f"rigd run: pipeline {plan.name!r} could not start: {exc}", file=err)
            return 1, _released(pipeline.kill(), err)
        finally:
            interrupts.starting = False
        print("rigd run: running; Ctrl-C stops cleanly, a second Ctrl-C forces", file=err)
        report = _follow(pipeline, interrupts, err)
    finally:
        actors.shutdown()  # before the handlers go: a late SIGTERM must not cut it short
        for sig, handler in previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
    print(format_report(report, forced=interrupts.forced, recorders=plan.recorders), file=out)
    if report.failure:
        return 1, report
    return (130 if interrupts.count else 0), report


def _released(report: RunReport, err: TextIO) -> RunReport:
    """``report`` after a start that recorded nothing gave its run id back
    (``_run_unused``), which it says."""
    report, removed = release_unrecorded(report)
    if removed:
        print(
            f"rigd run: nothing was recorded; removed {', '.join(removed)}, so run id "
            f"{report.run_id!r} can be used again",
            file=err,
        )
    return report


class _PaceWatch:
    """Says what goes wrong with a source's frames, by its cause.

    Drops: a source that dropped frames (its ring full, or frames its device
    could not deliver whole: the reasons of its drop notes) is warned of
    with the count per reason. Pace: a paced source (an ``fps`` option)
    whose frames, delivered and dropped together, come well below its rate
    is warned of as slow (it cannot keep its rate, or a reader holds it
    back); a source that keeps its rate but drops is not slow, and the drop
    warning alone says why its written rate is low.
    """

    def __init__(self, pipeline: Pipeline) -> None:
        self.nominal = {
            a.name: float(a.options["fps"])
            for a in pipeline.plan.actors
            if a.is_source and isinstance(a.options.get("fps"), (int, float)) and a.options["fps"]
        }
        #: Per source: how long (s) it has come below its rate, without a break.
        self.slow: dict[str, float] = dict.fromkeys(self.nominal, 0.0)
        self.warned: set[str] = set()
        self.dropped: dict[str, dict[str, int]] = {}
        #: Per source: (elapsed s, frames written and dropped) at the last check.
        self.counted: dict[str, tuple[float, int]] = {}

    def check_drops(self, status: PipelineStatus, err: TextIO) -> None:
        """Warns when a source dropped frames since the last check, with the reasons."""
        for link in status.links:
            seen = self.dropped.get(link.ring, {})
            now = dict(link.dropped_by_reason) or (
                {"ring_full": link.skipped} if link.skipped else {}
            )
            new = {r: n - seen.get(r, 0) for r, n in now.items() if n > seen.get(r, 0)}
            if not new:
                continue
            self.dropped[link.ring] = now
            counts = ", ".join(f"{n} {reason}" for reason, n in sorted(new.items()))
            why = []
            if "ring_full" in new:
                why.append(
                    "ring_full: its ring was full (a lossless reader a whole ring behind); a "
                    "camera is not held back, so they are lost"
                )
            if set(new) - {"ring_full"}:
                why.append("the others: the source reported it could not deliver them")
            err.write(
                f"\nrigd run: warning: {sum(new.values())} frame(s) dropped at {link.ring} "
                f"({counts}): {'; '.join(why)}. The run file's ledger has them with "
                "their reasons\n"
            )

    def check(self, status: PipelineStatus, err: TextIO) -> None:
        self.check_drops(status, err)
        for name, fps in self.nominal.items():
            links = [link for link in status.links if link.ring.startswith(f"{name}.")]
            if not links or all(link.closed for link in links):
                continue  # none, or the source has finished: it has no rate to keep
            # What the source produced: written, and dropped for any reason.
            produced = max(
                link.written + sum(link.dropped_by_reason.values() or [link.skipped])
                for link in links
            )
            last = self.counted.get(name)
            self.counted[name] = (status.elapsed_s, produced)
            if status.elapsed_s < 2.0 or last is None or status.elapsed_s <= last[0]:
                continue  # starting up
            span = status.elapsed_s - last[0]
            rate = (produced - last[1]) / span
            self.slow[name] = self.slow[name] + span if rate < 0.9 * fps else 0.0
            if self.slow[name] >= _SLOW_FOR_S and name not in self.warned:
                self.warned.add(name)
                err.write(
                    f"\nrigd run: warning: {name} delivers {rate:.1f} frames/s (written and "
                    f"dropped together), below its {fps:g} fps: it cannot keep its rate on "
                    "this machine, or a reader holds it back; give it a CPU of its own "
                    "(cpus:) or lighten the load\n"
                )
            elif self.slow[name] == 0:
                self.warned.discard(name)


def _follow(pipeline: Pipeline, interrupts: Interrupts, err: TextIO) -> RunReport:
    watch = _PaceWatch(pipeline)
    tty = err.isatty()
    every = _TTY_EVERY_S if tty else _PLAIN_EVERY_S
    next_line = time.monotonic() + every
    width = 0
    try:
        while not interrupts.stop.is_set():
            try:
                if pipeline.wait(timeout=0.2):
                    break
            except PipelineFailedError as exc:
                # The cause in full is the supervisor's log line just above and the
                # summary's failure line: not a third time here.
                who = (
                    f"actor {exc.actor!r} died and will not be restarted" if exc.actor else str(exc)
                )
                err.write(f"\nrigd run: the pipeline failed: {who}; its cause is in the summary\n")
                break
            if time.monotonic() >= next_line:
                next_line += every
                status = pipeline.status()
                watch.check(status, err)
                line = format_progress(status)
                if tty:
                    err.write("\r" + line.ljust(width))
                    width = len(line)
                else:
                    err.write(line + "\n")
                err.flush()
        if tty and width:
            err.write("\n")
        status = pipeline.status()
        watch.check_drops(status, err)
        print(format_progress(status), file=err)
        if interrupts.stop.is_set():
            print(
                f"rigd run: stopping: sources first, then each reader drains its inputs (up to "
                f"{DRAIN_S:.0f} s in all); Ctrl-C again forces",
                file=err,
            )
        interrupts.stopping = True  # from here a Ctrl-C (only) forces

        def on_wait(name: str, doing: str, left: float) -> None:
            print(
                f"rigd run: waiting for {name!r} to {doing}, {left:.0f} s more at most "
                "(then it is stopped anyway); Ctrl-C again forces the stop",
                file=err,
            )
            err.flush()

        return pipeline.stop(DRAIN_S, on_wait=on_wait)
    except KeyboardInterrupt:
        print("\nrigd run: forced stop; killing the actors and repairing run files", file=err)
        return pipeline.kill()


def parse_meta(items: Sequence[str]) -> dict[str, Any]:
    """``key=value`` pairs (``--meta mouse=M12``) as metadata; see ``meta_value``."""
    meta: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--meta takes key=value, got {item!r}")
        meta[key] = meta_value(value)
    return meta


_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


def meta_value(text: str) -> Any:
    """A metadata value given as text (``--meta``, a form field): a number stays a
    number (``23.5``, ``-3``, ``1e-3``), a double-quoted JSON string is that
    string (``"007"`` keeps its zeros), anything else is the text itself."""
    if _NUMBER.match(text):
        value = json.loads(text)
        if not isinstance(value, float) or math.isfinite(value):
            return value
    if len(text) >= 2 and text[0] == text[-1] == '"':
        try:
            decoded = json.loads(text)
        except ValueError:
            return text
        return decoded if isinstance(decoded, str) else text
    return text
