"""REST routes of a run under way: pause, resume, and every run's log.

``POST /v1/runs/current/pause``: the sources stop producing, every reader
drains, each recorder notes the pause; the run resumes on its own after
the pipeline's ``run.max_pause_s``. ``POST /v1/runs/current/resume`` ends
the pause. ``GET /v1/runs/{run_id}/logs``: the run's log file (every
actor's lines, prefixed with its name), optionally one actor's lines and
the last ``tail`` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Query, params

from rigd.pipeline import Pipeline
from rigd.service._daemon import Daemon, NotFoundError, RunRecord, TransitionError

__all__ = ["run_routes"]

#: The most lines one request returns (the newest ones).
MAX_LOG_LINES = 10_000


def _current(daemon: Daemon, what: str) -> tuple[Pipeline, RunRecord]:
    current = daemon.current_run()
    if current is None:
        raise TransitionError(
            f"no run is running (the daemon is {daemon.state.value}); {what} needs one "
            "(POST /v1/runs starts one)"
        )
    return current


def pause_run(daemon: Daemon) -> dict[str, Any]:
    """Pause the run under way.

    Raises:
        TransitionError: nothing is running, or it is paused or stopping already.
    """
    pipeline, record = _current(daemon, "a pause")
    try:
        pipeline.pause()
    except RuntimeError as exc:
        raise TransitionError(str(exc)) from None
    record.state = "paused"
    return {"run_id": record.run_id, "state": "paused", "max_pause_s": pipeline.max_pause_s}


def resume_run(daemon: Daemon) -> dict[str, Any]:
    """Resume the paused run.

    Raises:
        TransitionError: nothing is running, or it is not paused.
    """
    pipeline, record = _current(daemon, "a resume")
    try:
        span = pipeline.resume()
    except RuntimeError as exc:
        raise TransitionError(str(exc)) from None
    record.state = "running"
    return {"run_id": record.run_id, "state": "running", "paused_s": span.duration_s}


def run_log(daemon: Daemon, run_id: str, actor: str | None, tail: int | None) -> dict[str, Any]:
    """The lines of a run's log file (``actor``'s only, the last ``tail``).

    Raises:
        NotFoundError: no such run, or it has no log file.
    """
    record = daemon.run(run_id)
    path = daemon.data_dir / f"{record.run_id}.log"
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


def run_routes(daemon: Daemon, guarded: Sequence[params.Depends]) -> APIRouter:
    """The routes above, for ``daemon``, each behind ``guarded`` (the token check)."""
    # Imported here: _api imports this module, and its helpers are private to it.
    from rigd.service._api import _errors, _in_thread

    router = APIRouter(tags=["runs"], dependencies=list(guarded))

    @router.post("/v1/runs/current/pause", responses=_errors(401, 409))
    async def pause() -> dict[str, Any]:
        """Pause the run: sources stop producing, every reader drains, the run
        file notes the pause. It resumes on its own after the pipeline's
        ``run.max_pause_s`` (600 s unless set)."""
        return await _in_thread(pause_run, daemon)

    @router.post("/v1/runs/current/resume", responses=_errors(401, 409))
    async def resume() -> dict[str, Any]:
        """Resume the paused run; answers how long it was paused."""
        return await _in_thread(resume_run, daemon)

    @router.get("/v1/runs/{run_id}/logs", responses=_errors(401, 404, 422))
    async def logs(
        run_id: str,
        actor: str | None = None,
        tail: int | None = Query(default=None, ge=0),
    ) -> dict[str, Any]:
        """A run's log lines (``current`` for the latest run): every actor's, or
        one ``actor``'s, the last ``tail`` of them (at most 10,000)."""
        return await _in_thread(run_log, daemon, run_id, actor, tail)

    return router
