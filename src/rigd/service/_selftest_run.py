"""Where the self-test runs: ``rigd selftest`` (its own pipeline run, in a
scratch directory it removes) and ``GET /v1/selftest`` (the daemon's loaded
pipeline, as a real run named ``selftest-...``, only while nothing runs).
The checks themselves are ``rigd.service._selftest``."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query
from fastapi.params import Depends

from rigd.service._console import errors
from rigd.service._selftest import Check, format_checks, run_check, system_checks

if TYPE_CHECKING:
    from rigd.service._daemon import Daemon

__all__ = ["run_selftest", "selftest_router"]


def run_selftest(pipeline: str | None, *, seconds: float, minutes: float, data_dir: str) -> int:
    """``rigd selftest``: print the table; 0 if every check passed, 1 if one failed,
    2 for a pipeline that cannot be planned."""
    from rigd.actors import shutdown
    from rigd.config import PipelineFileError
    from rigd.pipeline import Pipeline, plan_pipeline
    from rigd.service._run import DEMO_PIPELINE

    source = Path(pipeline) if pipeline else DEMO_PIPELINE
    try:
        plan = plan_pipeline(source)
    except (FileNotFoundError, PipelineFileError) as exc:
        print(f"rigd selftest: {source}: {exc}", file=sys.stderr)
        return 2
    directory = Path(data_dir).resolve()
    print(
        f"rigd selftest: pipeline {plan.name!r} from {source}, data in {directory}", file=sys.stderr
    )
    checks = system_checks(plan, directory, minutes)
    if seconds > 0:
        here = os.getcwd()
        with tempfile.TemporaryDirectory(prefix=".rigd-selftest-run-", dir=directory) as scratch:
            os.chdir(scratch)
            try:
                run = Pipeline(plan, run_id="selftest", metadata={"selftest": True})
                try:
                    run.start()
                    deadline = time.monotonic() + seconds
                    while time.monotonic() < deadline and not run.wait(0.2):
                        pass
                    links = _links(run.status())
                    report = run.stop()
                    checks.append(
                        run_check(
                            links,
                            dict(report.dropped),
                            dict(report.frames),
                            seconds,
                            report.failure,
                        )
                    )
                except Exception as exc:  # noqa: BLE001 - the run's failure is a line
                    with_kill = getattr(run, "kill", None)
                    if with_kill is not None:
                        with_kill()
                    checks.append(
                        Check(
                            "run",
                            False,
                            f"could not run: {exc}",
                            "rigd run PIPELINE shows the actors' errors",
                        )
                    )
            finally:
                os.chdir(here)
                shutdown()
    print(format_checks(checks))
    return 1 if any(c.ok is False for c in checks) else 0


def _links(status: Any) -> list[dict[str, Any]]:
    return [
        {"ring": link.ring, "readers": [{"latency_p50_us": v} for v in link.latency_p50_us]}
        for link in status.links
    ]


def selftest_router(daemon: Daemon, guarded: list[Depends]) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/v1/selftest", tags=["service"], dependencies=guarded, responses=errors(401, 409, 422, 507)
    )
    async def selftest(
        seconds: float = Query(5.0, ge=0, le=30, description="The test run's length (0: none)."),
        minutes: float = Query(
            60.0,
            gt=0,
            le=7 * 24 * 60,
            description="The planned run length the free space must hold.",
        ),
    ) -> dict[str, Any]:
        """Certify this rig for the loaded pipeline: disk rate and space, /dev/shm,
        CPU wake-up, GPUs, cameras, clock, then (only when loaded and idle) a run
        of ``seconds`` named ``selftest-<time>``. Each check: ``ok`` (null:
        unknown), its figure and its fix; ``passed`` if none failed."""
        plan = daemon.loaded_plan()
        state = daemon.state.value
        busy = None if state in ("idle", "loaded", "failed") else f"the daemon is {state}"
        checks = await asyncio.to_thread(
            lambda: system_checks(plan, daemon.data_dir, minutes, busy=busy)
        )
        if plan is None:
            checks.append(Check("run", None, "no pipeline loaded", "PUT /v1/pipeline first"))
        elif seconds <= 0:
            pass
        elif any(c.name == "free space" and c.ok is False for c in checks):
            checks.append(
                Check(
                    "run",
                    None,
                    "not run: the planned run does not fit the free space",
                    "see the free space check",
                )
            )
        elif daemon.state.value not in ("loaded", "failed"):
            checks.append(
                Check(
                    "run",
                    None,
                    f"the daemon is {daemon.state.value}: the run under way is left alone",
                    "call again once it has stopped",
                )
            )
        else:
            run_id = "selftest-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
            record, _ = await asyncio.to_thread(daemon.start_run, run_id, {"selftest": True})
            await asyncio.sleep(seconds)
            links = daemon.status()["links"]
            if daemon.state.value == "running":
                record = await asyncio.to_thread(daemon.stop_run)
            checks.append(run_check(links, record.dropped, record.frames, seconds, record.failure))
        return {
            "passed": not any(c.ok is False for c in checks),
            "checks": [c.to_dict() for c in checks],
            "text": format_checks(checks),
        }

    return router
