"""``/v1/actors``, ``/v1/gpus``, ``/v1/cameras``: what the session runs on and with."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.exceptions import HTTPException as StarletteHTTPException

from rigd.service._asgi import in_thread
from rigd.service._cameras import CamerasUnavailableError, camera_list
from rigd.service._deps import GUARDED, DaemonDep
from rigd.service._errors import errors

__all__ = ["router"]

router = APIRouter(tags=["service"], dependencies=GUARDED)


@router.get("/v1/actors", responses=errors(401))
async def actors(daemon: DaemonDep) -> list[dict[str, Any]]:
    """Every actor of the session: the pipeline's and those scripts created."""
    return await in_thread(daemon.actors)


@router.get("/v1/gpus", responses=errors(401))
async def gpus(daemon: DaemonDep) -> list[dict[str, Any]]:
    """The GPUs, and which actors are placed on each."""
    return await in_thread(daemon.gpus)


@router.get("/v1/cameras", responses=errors(401, 503))
async def cameras() -> list[dict[str, str]]:
    """The GenICam cameras this host sees: id, vendor, model, serial, interface, address."""
    try:
        return await in_thread(camera_list)
    except CamerasUnavailableError as exc:
        raise StarletteHTTPException(503, detail=str(exc)) from exc
