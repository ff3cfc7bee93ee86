"""The REST API under ``/v1`` (FastAPI), with Prometheus metrics at ``/metrics``.

Every endpoint but ``/v1/health`` needs ``Authorization: Bearer <token>``.
Errors are JSON ``{"detail": "..."}`` whose message names the fix: 401 (no
or wrong token), 404 (no such run or pipeline file), 409 (not allowed in
this state), 413 (body too large), 422 (an invalid body, naming the field,
or a wrong pipeline, naming file, line and key). A run in progress is never
disturbed by a request that fails.

The daemon's long operations (start, stop, load) run on worker threads, so
the event loop keeps serving status and events while a run starts or stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from starlette.exceptions import HTTPException as StarletteHTTPException

from rigd._version import __version__
from rigd.config import PipelineFileError
from rigd.service._daemon import Daemon, NotFoundError, TransitionError
from rigd.service._metrics import metrics_text
from rigd.service._token import token_matches
from rigd.storage import RESERVED_ATTRIBUTES

__all__ = ["create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")
_KEEPALIVE_S = 15.0


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


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
        400: "The body could not be parsed.",
        401: "Missing or wrong bearer token.",
        404: "No such run or pipeline file.",
        409: "Not allowed in the daemon's state (the message says what to do).",
        413: "The body is larger than max_body_bytes.",
        415: "The body's Content-Type is not one this endpoint takes.",
        422: "An invalid body or pipeline (the message names the field, or file, line and key).",
        503: "A library this endpoint needs is not installed (the message says which).",
    }
    return {
        code: {
            "model": ErrorBody,
            "description": meaning[code],
            "content": {"application/json": {}},
        }
        for code in codes
    }


MetadataKey = Annotated[
    str, Field(pattern=rf"^(?!({'|'.join(sorted(RESERVED_ATTRIBUTES))})$)[^/]+$")
]

# Strict: a bool is not a number here (HDF5 would store it as one).
MetadataValue = StrictStr | StrictBool | StrictInt | StrictFloat | list[StrictInt | StrictFloat]


class StartRun(BaseModel):
    """``POST /v1/runs``: both fields optional."""

    # python-re: the metadata key pattern looks ahead (rigd's own names are refused).
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    run_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="Your id for the run (letters, digits, '.', '_', '-'); a start with an "
        "id already used returns that run and starts nothing, so retries are safe.",
        examples=["mouse12-session3"],
    )
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict,
        # pydantic writes the key pattern as patternProperties; other keys are refused too.
        json_schema_extra={"additionalProperties": False},
        description="Stored as attributes of the run file's root: strings, numbers, bools "
        "or lists of numbers; keys without '/' and not rigd's own attribute names.",
        examples=[{"animal": "mouse12", "experimenter": "ak"}],
    )


class LoadPipeline(BaseModel):
    """``PUT /v1/pipeline`` as JSON: a file by name, or the pipeline's YAML text."""

    model_config = ConfigDict(extra="forbid")

    file: str | None = Field(
        default=None,
        description="A file name in the pipeline directories (e.g. 'demo').",
        examples=["demo"],
    )
    text: str | None = Field(default=None, description="The pipeline file's YAML text.")


# Exactly one of the two, as the OpenAPI document says it.
_LOAD_PIPELINE_SCHEMA = {
    "oneOf": [
        {
            "type": "object",
            "title": "By file name",
            "properties": {"file": {"type": "string", "examples": ["demo"]}},
            "required": ["file"],
            "additionalProperties": False,
        },
        {
            "type": "object",
            "title": "By text",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
            "additionalProperties": False,
        },
    ]
}


class _BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, before the app sees them.

    The body is read here (a client that disconnects mid-body is simply
    dropped: the app never runs) and replayed to the app.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left mid-request: nothing to do, nothing changed
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse(
            {
                "detail": f"the request body is larger than {self.limit} bytes; send a "
                "smaller one (or raise max_body_bytes in the service config)"
            },
            status_code=413,
        )
        await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


def _validation_detail(errors: list[Any]) -> str:
    parts = []
    for error in errors:
        field = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{field}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is invalid"


def create_app(daemon: Daemon, token: str) -> FastAPI:
    """The ASGI app serving ``daemon``, guarded by ``token``."""
    bearer = HTTPBearer(auto_error=False, description="The token in the daemon's token file.")

    def authorized(
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> None:
        if credentials is None or not token_matches(credentials.credentials, token):
            raise _UnauthorizedError

    app = FastAPI(
        title="rigd",
        version=__version__,
        description="Start and stop acquisition runs on a lab rig, and watch them.",
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.add_middleware(_BodyLimit, limit=daemon.config.max_body_bytes)
    guarded = [Depends(authorized)]

    # -- errors ------------------------------------------------------------------------

    @app.exception_handler(_UnauthorizedError)
    async def _401(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {
                "detail": "missing or wrong bearer token; send 'Authorization: Bearer <token>' "
                "with the token from the daemon's token file"
            },
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette names the methods of the first route on the path only.
            allowed = sorted(
                method
                for route in app.routes
                if isinstance(route, APIRoute) and route.path_regex.match(request.url.path)
                for method in route.methods or ()
            )
            headers["Allow"] = ", ".join(allowed)
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(TransitionError)
    async def _409(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "state": daemon.state.value}, status_code=409)

    @app.exception_handler(NotFoundError)
    async def _404(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(PipelineFileError)
    async def _422_pipeline(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, PipelineFileError)
        return JSONResponse(
            {"detail": str(exc), "problems": exc.problems, "state": daemon.state.value},
            status_code=422,
        )

    @app.exception_handler(ValueError)
    async def _422_value(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _422_body(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse(
            {"detail": _validation_detail(errors), "errors": errors}, status_code=422
        )

    # -- endpoints ---------------------------------------------------------------------

    @app.get(
        "/v1/health",
        tags=["service"],
        responses={503: {"description": "Unhealthy: the reason is in 'detail'."}},
    )
    async def health() -> JSONResponse:
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

    @app.get("/v1/status", tags=["service"], dependencies=guarded, responses=_errors(401))
    async def status() -> JSONResponse:
        """State, pipeline, run, per-actor state and restarts, per-link rate, drops and
        ring fill, and GPUs (sampled by the daemon twice a second: polling is cheap)."""
        return JSONResponse(daemon.status())

    @app.get("/v1/pipeline", tags=["pipeline"], dependencies=guarded, responses=_errors(401))
    async def get_pipeline() -> dict[str, Any]:
        """The loaded pipeline: actors, links and its text."""
        return daemon.pipeline_info()

    @app.put(
        "/v1/pipeline",
        tags=["pipeline"],
        dependencies=guarded,
        responses=_errors(401, 404, 409, 413, 415, 422),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": _LOAD_PIPELINE_SCHEMA},
                    "application/yaml": {"schema": {"type": "string"}},
                },
            }
        },
    )
    async def put_pipeline(request: Request) -> dict[str, Any]:
        """Load a pipeline: YAML text (``Content-Type: application/yaml``), or JSON
        ``{"file": "demo"}`` (a file in the pipeline directories) or ``{"text": "..."}``.
        A wrong pipeline is refused (422, naming file, line and key) and the one
        already loaded stays."""
        body = await request.body()
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        text: str | None = None
        name: str | None = None
        if content_type in _YAML_TYPES:
            try:
                text = body.decode()
            except UnicodeDecodeError:
                raise ValueError("the pipeline text is not UTF-8") from None
        elif content_type in ("application/json", ""):
            try:
                request_body = LoadPipeline.model_validate_json(body or b"{}")
            except ValueError as exc:
                raise _json_body_error(exc) from None
            if (request_body.file is None) == (request_body.text is None):
                raise ValueError(
                    "send exactly one of 'file' (a pipeline file's name) and 'text' (its YAML text)"
                )
            text, name = request_body.text, request_body.file
        else:
            raise _UnsupportedMediaError(content_type)
        return await run_in_threadpool(daemon.load, text=text, name=name)

    @app.post(
        "/v1/runs",
        tags=["runs"],
        dependencies=guarded,
        status_code=201,
        responses={
            200: {"description": "A run with this run_id was started before: that run."},
            **_errors(400, 401, 409, 413, 422),
        },
    )
    async def start_run(response: Response, body: StartRun | None = None) -> dict[str, Any]:
        """Start a run of the loaded pipeline (201), or return the run with this
        ``run_id`` if it was started before (200)."""
        body = body or StartRun()
        record, created = await run_in_threadpool(daemon.start_run, body.run_id, body.metadata)
        if not created:
            response.status_code = 200
        return record.to_dict()

    @app.post(
        "/v1/runs/current/stop", tags=["runs"], dependencies=guarded, responses=_errors(401, 409)
    )
    async def stop_run() -> dict[str, Any]:
        """Stop the current run cleanly: sources first, every reader drains, files
        sealed. Returns the finished run."""
        record = await run_in_threadpool(daemon.stop_run)
        return record.to_dict()

    @app.get("/v1/runs", tags=["runs"], dependencies=guarded, responses=_errors(401))
    async def list_runs() -> list[dict[str, Any]]:
        """Every run of this daemon, oldest first (kept across restarts)."""
        return [r.to_dict() for r in daemon.runs()]

    @app.get("/v1/runs/{run_id}", tags=["runs"], dependencies=guarded, responses=_errors(401, 404))
    async def get_run(run_id: str) -> dict[str, Any]:
        """One run (``current`` for the latest): file paths, frames, drops, state."""
        return daemon.run(run_id).to_dict()

    @app.get("/v1/actors", tags=["service"], dependencies=guarded, responses=_errors(401))
    async def actors() -> list[dict[str, Any]]:
        """Every actor of the session: the pipeline's and those scripts created."""
        return await run_in_threadpool(daemon.actors)

    @app.get("/v1/gpus", tags=["service"], dependencies=guarded, responses=_errors(401))
    async def gpus() -> list[dict[str, Any]]:
        """The GPUs, and which actors are placed on each."""
        return await run_in_threadpool(daemon.gpus)

    @app.get("/v1/cameras", tags=["service"], dependencies=guarded, responses=_errors(401, 503))
    async def cameras() -> list[dict[str, str]]:
        """The GenICam cameras this host sees: id, vendor, model, serial, interface, address."""
        from rigd.service._cameras import CamerasUnavailableError, camera_list

        try:
            return await run_in_threadpool(camera_list)
        except CamerasUnavailableError as exc:
            raise StarletteHTTPException(503, detail=str(exc)) from exc

    @app.get(
        "/v1/events",
        tags=["service"],
        dependencies=guarded,
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}, **_errors(401)},
    )
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: ``state`` on every state change, ``run`` when a run
        starts or ends, so lab software need not poll. The first event is
        ``status``, the state now."""
        return StreamingResponse(
            _event_stream(daemon, request),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get(
        "/metrics",
        tags=["service"],
        dependencies=guarded,
        response_class=PlainTextResponse,
        responses=_errors(401),
    )
    async def metrics() -> Response:
        """Prometheus metrics (text format)."""
        body, content_type = metrics_text(daemon)
        return Response(body, media_type=content_type)

    @app.exception_handler(_UnsupportedMediaError)
    async def _415(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {
                "detail": f"unsupported Content-Type {str(exc)!r}; send the pipeline as "
                "application/yaml, or JSON {'file': ...} / {'text': ...}"
            },
            status_code=415,
        )

    return app


class _UnauthorizedError(Exception):
    pass


class _UnsupportedMediaError(Exception):
    pass


def _json_body_error(exc: ValueError) -> RequestValidationError:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return RequestValidationError([{**e, "loc": ("body", *e.get("loc", ()))} for e in errors()])
    return RequestValidationError([{"loc": ("body",), "msg": str(exc), "type": "value_error"}])


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


async def _event_stream(daemon: Daemon, request: Request) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

    def deliver(event: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(event)

    def from_any_thread(event: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed
            loop.call_soon_threadsafe(deliver, event)

    unsubscribe = daemon.subscribe(from_any_thread)
    try:
        yield _sse({"type": "status", **daemon.status()})
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=_KEEPALIVE_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            yield _sse(event)
            if event["type"] == "shutdown":
                return
    finally:
        unsubscribe()
