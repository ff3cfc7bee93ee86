"""``/v1/runs``: start, stop and trigger the current run; list, read and export runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from rigd.service._asgi import in_thread
from rigd.service._bodies import (
    START_FORM,
    START_FORM_SCHEMA,
    StartRun,
    Trigger,
    body_fields,
    json_body_error,
    start_run_schema,
)
from rigd.service._deps import GUARDED, DaemonDep
from rigd.service._errors import errors
from rigd.service._export import export_metadata, export_nwb_file
from rigd.service._records import TransitionError

__all__ = ["router"]

router = APIRouter(tags=["runs"], dependencies=GUARDED)


@router.post(
    "/v1/runs",
    status_code=201,
    responses={
        200: {"description": "A retry of the start under way: that run."},
        **errors(400, 401, 409, 413, 415, 422, 507),
    },
    openapi_extra={
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {"schema": start_run_schema()},
                "application/x-www-form-urlencoded": {"schema": START_FORM_SCHEMA},
            },
        }
    },
)
async def start_run(request: Request, response: Response, daemon: DaemonDep) -> dict[str, Any]:
    """Start a run of the loaded pipeline (201), or return the run with this
    ``run_id`` if it is the one starting or running now (200). JSON, or a
    form (``run_id=...&meta.mouse=M12`` or ``metadata={"mouse": ...}``)."""
    fields = await body_fields(request, START_FORM, "POST /v1/runs")
    try:
        body = StartRun.model_validate(fields)
    except ValueError as exc:
        raise json_body_error(exc) from None
    record, created = await in_thread(daemon.start_run, body.run_id, body.metadata)
    if not created:
        response.status_code = 200
    return record.to_dict()


@router.post("/v1/runs/current/stop", responses=errors(401, 409))
async def stop_run(daemon: DaemonDep) -> dict[str, Any]:
    """Stop the current run cleanly: sources first, every reader drains, files
    sealed. Returns the finished run."""
    record = await in_thread(daemon.stop_run)
    return record.to_dict()


@router.post(
    "/v1/runs/current/trigger",
    responses=errors(401, 409, 415, 422),
)
async def trigger(request: Request, daemon: DaemonDep) -> dict[str, Any]:
    """A soft trigger for the run's triggered recorders (``TriggeredRecorder``):
    they keep the frames before it and record those after. JSON
    ``{"label": "..."}``, a form ``label=...``, or no body. There is no value
    to send: nothing but this call fires (a 0 or false fires nothing, it is
    refused)."""
    fields = await body_fields(request, ("label",), "POST /v1/runs/current/trigger")
    try:
        body = Trigger.model_validate(fields)
    except ValueError as exc:
        raise json_body_error(exc) from None
    taken = await in_thread(daemon.trigger, body.label)
    return {"label": body.label, "recorders": taken}


@router.get("/v1/runs", responses=errors(401))
async def list_runs(daemon: DaemonDep) -> list[dict[str, Any]]:
    """Every run of this daemon, oldest first (kept across restarts)."""
    return [r.to_dict() for r in daemon.runs()]


@router.get("/v1/runs/{run_id}", responses=errors(401, 404))
async def get_run(run_id: str, daemon: DaemonDep) -> dict[str, Any]:
    """One run (``current`` for the latest): file paths, frames, drops, state."""
    return daemon.run(run_id).to_dict()


@router.get(
    "/v1/runs/{run_id}/export",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/x-nwb": {}}},
        **errors(401, 404, 409, 422),
    },
)
async def export_run(
    daemon: DaemonDep, request: Request, run_id: str, format: str = "nwb"
) -> Response:
    """The run's file as NWB (``format=nwb``), frames copied in: one
    self-contained file. ``meta.KEY=VALUE`` query parameters add to (or replace)
    the run's metadata, as ``rigd export --meta KEY=VALUE`` does (a number stays a
    number; ``"007"`` a string). Metadata NWB requires and the run lacks (its
    ``session_description``, ``subject_id``, ``species``, ``age``) is a 422 that
    names each field."""
    if format != "nwb":
        raise ValueError(f"format {format!r} is not one rigd exports; use format=nwb")
    metadata = export_metadata(request.query_params.multi_items())
    record = daemon.run(run_id)
    if record.active or len(record.files) != 1:
        raise TransitionError(
            f"run {record.run_id!r} is {record.state} with {len(record.files)} file(s); "
            "a finished run with one file exports"
        )
    run = Path(record.files[0])
    out, scratch = await in_thread(export_nwb_file, run, metadata)
    done = BackgroundTask(out.unlink, missing_ok=True) if scratch else None
    return FileResponse(
        out, media_type="application/x-nwb", filename=run.with_suffix(".nwb").name, background=done
    )
