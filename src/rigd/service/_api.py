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
import concurrent.futures
import contextlib
import json
import threading
import unicodedata
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException

from rigd._version import __version__
from rigd.config import PipelineFileError
from rigd.service._daemon import Daemon, InsufficientStorageError, NotFoundError, TransitionError
from rigd.service._metrics import metrics_text
from rigd.service._run_routes import run_routes
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
_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
_T = TypeVar("_T")


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


def _export_nwb(run: Path) -> Path:
    """``run`` as NWB beside it (made once; made again if the run file is newer)."""
    from rigd.storage import export_nwb

    out = run.with_suffix(".nwb")
    if out.exists() and out.stat().st_mtime >= run.stat().st_mtime:
        return out
    partial = out.with_suffix(".nwb.partial")
    partial.unlink(missing_ok=True)
    try:
        export_nwb(run, partial, link=False)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    return out


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    meaning = {
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

# Any JSON value: strings, numbers, bools and lists of numbers are stored as they
# are, anything else (a nested mapping) as its JSON text (rigd.storage.check_metadata).
MetadataValue = JsonValue


class Trigger(BaseModel):
    """``POST /v1/runs/current/trigger``: an optional label."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(
        default="",
        description="Stored in the event's row of the run file: at most 64 bytes of "
        "UTF-8, no control characters.",
        examples=["air puff 3"],
    )

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        if len(value.encode("utf-8", "surrogatepass")) > 64:
            raise ValueError("a label is at most 64 bytes of UTF-8; shorten it")
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
            raise ValueError("a label may not hold control characters; remove them")
        return value


class StartRun(BaseModel):
    """``POST /v1/runs``: both fields optional."""

    # python-re: the metadata key pattern looks ahead (rigd's own names are refused).
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    run_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
        description="Your id for the run (letters, digits, '.', '_', '-'). A retry of the "
        "start under way returns that run (200) and starts nothing; an id used by a run "
        "that has ended is refused (409): a run is never recorded over.",
        examples=["mouse12-session3"],
    )
    metadata: dict[MetadataKey, MetadataValue] = Field(
        default_factory=dict,
        # pydantic writes the key pattern as patternProperties; other keys are refused too.
        json_schema_extra={"additionalProperties": False},
        description="Stored as attributes of the run file's root: strings, numbers, bools "
        "and lists of numbers as they are, anything else (a nested mapping) as its JSON "
        "text; keys without '/' or NUL, at most 255 characters, not rigd's own attribute "
        "names; a value at most 16 KiB stored, 64 KiB in all.",
        examples=[{"animal": "mouse12", "experimenter": "ak", "mouse": {"id": "M12"}}],
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


async def _in_thread(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run ``function`` on a daemon thread of its own and await its result.

    Not the event loop's thread pool: a request the daemon cannot finish (a
    pipeline class whose import blocks) must never keep it from exiting on
    SIGTERM, and a pool's threads are joined at exit.
    """
    future: concurrent.futures.Future[_T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
            future.set_exception(exc)

    threading.Thread(target=run, name="rigd-request", daemon=True).start()
    return await asyncio.wrap_future(future)


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
        # /docs is served from files installed with rigd (a rig PC may be offline);
        # it and /openapi.json describe the API only, so they need no token.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> Response:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="rigd API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        if name not in _DOCS_ASSETS:
            return JSONResponse({"detail": f"no docs asset {name!r}"}, status_code=404)
        return FileResponse(
            Path(swagger_ui_bundle.swagger_ui_path) / name,
            media_type=_DOCS_ASSETS[name],
            headers={"Cache-Control": "max-age=86400"},
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

    @app.exception_handler(InsufficientStorageError)
    async def _507(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "state": daemon.state.value}, status_code=507)

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
                    "application/x-www-form-urlencoded": {"schema": _LOAD_PIPELINE_SCHEMA},
                },
            }
        },
    )
    async def put_pipeline(request: Request) -> dict[str, Any]:
        """Load a pipeline: YAML text (``Content-Type: application/yaml``), or JSON
        ``{"file": "demo"}`` (a file in the pipeline directories) or ``{"text": "..."}``.
        A wrong pipeline is refused (422, naming file, line and key) and the one
        already loaded stays."""
        content_type = _content_type(request)
        text: str | None = None
        name: str | None = None
        if content_type in _YAML_TYPES:
            body = await request.body()
            try:
                text = body.decode()
            except UnicodeDecodeError:
                raise ValueError("the pipeline text is not UTF-8") from None
        else:
            fields = await _body_fields(request, _LOAD_FORM, "PUT /v1/pipeline", yaml=True)
            try:
                request_body = LoadPipeline.model_validate(fields)
            except ValueError as exc:
                raise _json_body_error(exc) from None
            if (request_body.file is None) == (request_body.text is None):
                raise ValueError(
                    "send exactly one of 'file' (a pipeline file's name) and 'text' (its YAML text)"
                )
            text, name = request_body.text, request_body.file
        for field, value in (("text", text), ("file", name)):
            if value is not None:
                try:
                    value.encode()
                except UnicodeEncodeError:
                    raise ValueError(
                        f"the pipeline's {field} is not valid UTF-8 text (it holds a lone "
                        "surrogate); send UTF-8"
                    ) from None
        return await _in_thread(daemon.load, text=text, name=name)

    @app.post(
        "/v1/runs",
        tags=["runs"],
        dependencies=guarded,
        status_code=201,
        responses={
            200: {"description": "A retry of the start under way: that run."},
            **_errors(400, 401, 409, 413, 415, 422, 507),
        },
        openapi_extra={
            "requestBody": {
                "required": False,
                "content": {
                    "application/json": {"schema": _start_run_schema()},
                    "application/x-www-form-urlencoded": {"schema": _START_FORM_SCHEMA},
                },
            }
        },
    )
    async def start_run(request: Request, response: Response) -> dict[str, Any]:
        """Start a run of the loaded pipeline (201), or return the run with this
        ``run_id`` if it is the one starting or running now (200). JSON, or a
        form (``run_id=...&meta.mouse=M12`` or ``metadata={"mouse": ...}``)."""
        fields = await _body_fields(request, _START_FORM, "POST /v1/runs")
        try:
            body = StartRun.model_validate(fields)
        except ValueError as exc:
            raise _json_body_error(exc) from None
        record, created = await _in_thread(daemon.start_run, body.run_id, body.metadata)
        if not created:
            response.status_code = 200
        return record.to_dict()

    @app.post(
        "/v1/runs/current/stop", tags=["runs"], dependencies=guarded, responses=_errors(401, 409)
    )
    async def stop_run() -> dict[str, Any]:
        """Stop the current run cleanly: sources first, every reader drains, files
        sealed. Returns the finished run."""
        record = await _in_thread(daemon.stop_run)
        return record.to_dict()

    @app.post(
        "/v1/runs/current/trigger",
        tags=["runs"],
        dependencies=guarded,
        responses=_errors(401, 409, 415, 422),
    )
    async def trigger(request: Request) -> dict[str, Any]:
        """A soft trigger for the run's triggered recorders (``TriggeredRecorder``):
        they keep the frames before it and record those after. JSON
        ``{"label": "..."}``, a form ``label=...``, or no body. There is no value
        to send: nothing but this call fires (a 0 or false fires nothing, it is
        refused)."""
        fields = await _body_fields(request, ("label",), "POST /v1/runs/current/trigger")
        try:
            body = Trigger.model_validate(fields)
        except ValueError as exc:
            raise _json_body_error(exc) from None
        taken = await _in_thread(daemon.trigger, body.label)
        return {"label": body.label, "recorders": taken}

    @app.get("/v1/runs", tags=["runs"], dependencies=guarded, responses=_errors(401))
    async def list_runs() -> list[dict[str, Any]]:
        """Every run of this daemon, oldest first (kept across restarts)."""
        return [r.to_dict() for r in daemon.runs()]

    @app.get("/v1/runs/{run_id}", tags=["runs"], dependencies=guarded, responses=_errors(401, 404))
    async def get_run(run_id: str) -> dict[str, Any]:
        """One run (``current`` for the latest): file paths, frames, drops, state."""
        return daemon.run(run_id).to_dict()

    @app.get(
        "/v1/runs/{run_id}/export",
        tags=["runs"],
        dependencies=guarded,
        response_class=FileResponse,
        responses={
            200: {"content": {"application/x-nwb": {}}},
            **_errors(401, 404, 409, 422),
        },
    )
    async def export_run(run_id: str, format: str = "nwb") -> Response:
        """The run's file as NWB (``format=nwb``), frames copied in: one
        self-contained file. Metadata NWB requires and the run lacks (its
        ``session_description``, ``subject_id``, ``species``, ``age``) is a
        422 that names each field."""
        if format != "nwb":
            raise ValueError(f"format {format!r} is not one rigd exports; use format=nwb")
        record = daemon.run(run_id)
        if record.state in ("starting", "running", "stopping") or len(record.files) != 1:
            raise TransitionError(
                f"run {record.run_id!r} is {record.state} with {len(record.files)} file(s); "
                "a finished run with one file exports"
            )
        out = await _in_thread(_export_nwb, Path(record.files[0]))
        return FileResponse(out, media_type="application/x-nwb", filename=out.name)

    @app.get("/v1/actors", tags=["service"], dependencies=guarded, responses=_errors(401))
    async def actors() -> list[dict[str, Any]]:
        """Every actor of the session: the pipeline's and those scripts created."""
        return await _in_thread(daemon.actors)

    @app.get("/v1/gpus", tags=["service"], dependencies=guarded, responses=_errors(401))
    async def gpus() -> list[dict[str, Any]]:
        """The GPUs, and which actors are placed on each."""
        return await _in_thread(daemon.gpus)

    @app.get("/v1/cameras", tags=["service"], dependencies=guarded, responses=_errors(401, 503))
    async def cameras() -> list[dict[str, str]]:
        """The GenICam cameras this host sees: id, vendor, model, serial, interface, address."""
        from rigd.service._cameras import CamerasUnavailableError, camera_list

        try:
            return await _in_thread(camera_list)
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

    app.include_router(run_routes(daemon, guarded))

    @app.exception_handler(_UnsupportedMediaError)
    async def _415(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=415)

    return app


class _UnauthorizedError(Exception):
    pass


class _UnsupportedMediaError(Exception):
    pass


_FORM = "application/x-www-form-urlencoded"
#: The form fields each endpoint takes (besides ``meta.KEY`` for a run's metadata).
_START_FORM = ("run_id", "metadata")
_LOAD_FORM = ("file", "text")
_MAX_FORM_FIELDS = 1000
_START_FORM_SCHEMA = {
    "type": "object",
    "properties": {
        "run_id": {"type": "string"},
        "metadata": {"type": "string", "description": "The metadata as a JSON object."},
    },
    "patternProperties": {
        "^meta\\.[^/]+$": {
            "type": "string",
            "description": "One metadata value: a number stays a number, anything else "
            "is a string.",
        }
    },
    "additionalProperties": False,
}


def _start_run_schema() -> dict[str, Any]:
    """StartRun's JSON schema, self-contained (a metadata value is any JSON)."""
    schema = StartRun.model_json_schema()
    schema.pop("$defs", None)
    text = json.dumps(schema).replace('{"$ref": "#/$defs/JsonValue"}', "{}")
    result: dict[str, Any] = json.loads(text)
    return result


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def _body_fields(
    request: Request, form_fields: tuple[str, ...], endpoint: str, *, yaml: bool = False
) -> dict[str, Any]:
    """The body as a mapping: JSON (or no body), or a form mapped as README says.

    Raises:
        _UnsupportedMediaError: another Content-Type (415, saying what is taken).
        RequestValidationError: a body that cannot be read (422, naming the field).
    """
    from rigd.service._run import meta_value

    content_type = _content_type(request)
    body = await request.body()
    if content_type in ("application/json", "") or content_type.endswith("+json"):
        if not body.strip():
            return {}
        try:
            data = json.loads(body)
        except (ValueError, RecursionError) as exc:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": f"not valid JSON: {exc}", "type": "json_invalid"}]
            ) from None
        if not isinstance(data, dict):
            raise RequestValidationError(
                [{"loc": ("body",), "msg": "send a JSON object", "type": "dict_type"}]
            )
        return data
    if content_type == _FORM:
        try:
            pairs = urllib.parse.parse_qsl(
                body.decode("ascii"),
                keep_blank_values=True,
                strict_parsing=False,
                errors="strict",
                max_num_fields=_MAX_FORM_FIELDS,
            )
        except (UnicodeError, ValueError) as exc:
            raise RequestValidationError(
                [{"loc": ("body",), "msg": f"not a valid form: {exc}", "type": "value_error"}]
            ) from None
        fields: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        for key, value in pairs:
            if key.startswith("meta.") and "metadata" in form_fields:
                metadata[key.removeprefix("meta.")] = meta_value(value)
            elif key in form_fields:
                if key in fields:
                    raise RequestValidationError(
                        [{"loc": ("body", key), "msg": "given twice", "type": "value_error"}]
                    )
                fields[key] = value
            else:
                taken = ", ".join(
                    [*form_fields, *(["meta.KEY"] if "metadata" in form_fields else [])]
                )
                raise RequestValidationError(
                    [
                        {
                            "loc": ("body", key),
                            "msg": f"unknown form field; this endpoint takes {taken}",
                            "type": "extra_forbidden",
                        }
                    ]
                )
        if "metadata" in fields:
            try:
                given = json.loads(fields["metadata"]) if fields["metadata"] else {}
            except ValueError as exc:
                raise RequestValidationError(
                    [
                        {
                            "loc": ("body", "metadata"),
                            "msg": f"a JSON object is expected: {exc}",
                            "type": "json_invalid",
                        }
                    ]
                ) from None
            fields["metadata"] = given
        if metadata:
            if not isinstance(fields.get("metadata", {}), dict):
                raise RequestValidationError(
                    [{"loc": ("body", "metadata"), "msg": "a JSON object", "type": "dict_type"}]
                )
            fields["metadata"] = {**fields.get("metadata", {}), **metadata}
        return fields
    takes = "application/json or application/x-www-form-urlencoded"
    if yaml:
        takes = f"application/yaml (the pipeline's text), {takes}"
    raise _UnsupportedMediaError(
        f"{endpoint} does not take Content-Type {content_type!r}; send {takes} (README: 'Requests')"
    )


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
