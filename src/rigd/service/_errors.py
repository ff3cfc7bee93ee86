"""Errors as the API answers them: JSON ``{"detail": "..."}`` whose message names the fix.

401 (no or wrong token), 404 (no such run or pipeline file), 409 (not
allowed in this state), 413 (body too large), 415 (a Content-Type not
taken), 422 (an invalid body, naming the field, or a wrong pipeline, naming
file, line and key), 507 (the run does not fit the disk). ``errors(...)``
documents them on a route; ``install_error_handlers`` answers them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from rigd.config import PipelineFileError
from rigd.service._bodies import UnsupportedMediaError
from rigd.service._daemon import Daemon
from rigd.service._deps import UnauthorizedError
from rigd.service._records import InsufficientStorageError, NotFoundError, TransitionError

__all__ = ["ErrorBody", "errors", "install_error_handlers"]

_MEANING = {
    400: "The body could not be parsed.",
    401: "Missing or wrong bearer token.",
    404: "No such run or pipeline file.",
    409: "Not allowed in the daemon's state (the message says what to do).",
    413: "The body is larger than max_body_bytes.",
    415: "The body's Content-Type is not one this endpoint takes.",
    422: "An invalid body or pipeline (the message names the field, or file, line and key).",
    507: "The run's planned length does not fit the data directory's free space.",
    503: "A library this endpoint needs is not installed (the message says which).",
}


class ErrorBody(BaseModel):
    """Every error: a message that names the problem and the fix."""

    detail: str
    state: str | None = Field(default=None, description="The daemon's state (409, 422).")
    problems: list[str] | None = Field(
        default=None, description="A wrong pipeline: each problem with file, line and key."
    )
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="An invalid body: each field at fault."
    )


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=``: each error code with its meaning and body."""
    return {
        code: {
            "model": ErrorBody,
            "description": _MEANING[code],
            "content": {"application/json": {}},
        }
        for code in codes
    }


def _validation_detail(errors: list[Any]) -> str:
    parts = []
    for error in errors:
        field = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{field}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


def _state(request: Request) -> str:
    daemon: Daemon = request.app.state.daemon
    return daemon.state.value


async def _401(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {
            "detail": "missing or wrong bearer token; send 'Authorization: Bearer <token>' "
            "with the token from the daemon's token file"
        },
        status_code=401,
        headers={"WWW-Authenticate": "Bearer"},
    )


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route on the path only.
        allowed = sorted(
            method
            for route in request.app.routes
            if isinstance(route, APIRoute) and route.path_regex.match(request.url.path)
            for method in route.methods or ()
        )
        headers["Allow"] = ", ".join(allowed)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _409(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "state": _state(request)}, status_code=409)


async def _507(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "state": _state(request)}, status_code=507)


async def _404(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _422_pipeline(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PipelineFileError)
    return JSONResponse(
        {"detail": str(exc), "problems": exc.problems, "state": _state(request)},
        status_code=422,
    )


async def _422_value(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _422_body(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": _validation_detail(errors), "errors": errors}, status_code=422)


async def _415(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=415)


def install_error_handlers(app: FastAPI) -> None:
    """Answer each error as the module's docstring says."""
    app.add_exception_handler(UnauthorizedError, _401)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(TransitionError, _409)
    app.add_exception_handler(InsufficientStorageError, _507)
    app.add_exception_handler(NotFoundError, _404)
    app.add_exception_handler(PipelineFileError, _422_pipeline)
    app.add_exception_handler(ValueError, _422_value)
    app.add_exception_handler(RequestValidationError, _422_body)
    app.add_exception_handler(UnsupportedMediaError, _415)
