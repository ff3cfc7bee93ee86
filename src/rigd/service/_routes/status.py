"""``/v1/health`` (no token) and ``/v1/status``: how the daemon and its run stand."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from rigd._version import __version__
from rigd.service._deps import GUARDED, DaemonDep
from rigd.service._errors import errors

__all__ = ["router"]

router = APIRouter(tags=["service"])


@router.get(
    "/v1/health",
    responses={503: {"description": "Unhealthy: the reason is in 'detail'."}},
)
async def health(daemon: DaemonDep) -> JSONResponse:
    """Whether the daemon is healthy (no token needed): 200, or 503 with the reason."""
    healthy, detail = daemon.health()
    return JSONResponse(
        {
            "healthy": healthy,
            "state": daemon.state.value,
            "detail": detail,
            "version": __version__,
        },
        status_code=200 if healthy else 503,
    )


@router.get("/v1/status", dependencies=GUARDED, responses=errors(401))
async def status(daemon: DaemonDep) -> JSONResponse:
    """State, pipeline, run, per-actor state and restarts, per-link rate, drops and
    ring fill, and GPUs (sampled by the daemon twice a second: polling is cheap)."""
    return JSONResponse(daemon.status())
