"""``/v1/runs``, a run under way: pause and resume it; every run's log.

``POST /v1/runs/current/pause``: the sources stop producing, every reader
drains, each recorder notes the pause; the run resumes on its own after
the pipeline's ``run.max_pause_s``. ``POST /v1/runs/current/resume`` ends
the pause. Both move the daemon and its run record between ``running``
and ``paused`` along their transition tables (``Daemon.pause_run``).
``GET /v1/runs/{run_id}/logs``: the run's log file (every actor's lines,
prefixed with its name, ``rigd.pipeline._run_log``), optionally one
actor's lines and the last ``tail`` of them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BeforeValidator

from rigd.service._asgi import in_thread
from rigd.service._daemon import Daemon
from rigd.service._deps import GUARDED, DaemonDep
from rigd.service._errors import errors
from rigd.service._records import NotFoundError

__all__ = ["MAX_LOG_LINES", "router", "run_log"]

#: The most lines one request returns (the newest ones).
MAX_LOG_LINES = 10_000

router = APIRouter(tags=["runs"], dependencies=GUARDED)


def run_log(daemon: Daemon, run_id: str, actor: str | None, tail: int | None) -> dict[str, Any]:
    """The lines of a run's log file (``actor``'s only, the last ``tail``).

    Raises:
        NotFoundError: no such run, or it has no log file.
    """
    record = daemon.run(run_id)
    path = daemon.state_dir / f"{record.run_id}.log"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise NotFoundError(
            f"run {record.run_id} has no log file ({path.name} is not in the data directory)"
        ) from None
    lines = text.splitlines()
    if actor is not None:
        lines = [line for line in lines if _actor_of(line) == actor]
    limit = min(tail if tail is not None else MAX_LOG_LINES, MAX_LOG_LINES)
    return {"run_id": record.run_id, "path": str(path), "lines": lines[-limit:] if limit else []}


def _actor_of(line: str) -> str | None:
    # "2026-11-30 03:01:19,123 camera INFO logger: message": the third word.
    parts = line.split(" ", 3)
    return parts[2] if len(parts) > 3 else None


@router.post("/v1/runs/current/pause", responses=errors(401, 409))
async def pause_run(daemon: DaemonDep) -> dict[str, Any]:
    """Pause the run: sources stop producing, every reader drains, the run
    file notes the pause. It resumes on its own after the pipeline's
    ``run.max_pause_s`` (600 s unless set)."""
    record, max_pause_s = await in_thread(daemon.pause_run)
    return {"run_id": record.run_id, "state": "paused", "max_pause_s": max_pause_s}


@router.post("/v1/runs/current/resume", responses=errors(401, 409))
async def resume_run(daemon: DaemonDep) -> dict[str, Any]:
    """Resume the paused run; answers how long it was paused."""
    record, paused_s = await in_thread(daemon.resume_run)
    return {"run_id": record.run_id, "state": "running", "paused_s": paused_s}


def _whole_number(value: Any) -> Any:
    """A count as a query gives it: digits only (``+0.0`` or ``1e3`` is refused, 422)."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError(f"a whole number of lines, e.g. 100; got {value!r}")
    return value


@router.get("/v1/runs/{run_id}/logs", responses=errors(401, 404, 422))
async def run_logs(
    daemon: DaemonDep,
    run_id: str,
    actor: str | None = None,
    tail: Annotated[int | None, BeforeValidator(_whole_number), Query(ge=0)] = None,
) -> dict[str, Any]:
    """A run's log lines (``current`` for the latest run): every actor's, or
    one ``actor``'s, the last ``tail`` of them (at most 10,000)."""
    return await in_thread(run_log, daemon, run_id, actor, tail)
