"""``/v1/pipeline``: the loaded pipeline, and loading one (a file by name, or its text)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from rigd.service._asgi import in_thread
from rigd.service._bodies import (
    LOAD_FORM,
    LOAD_PIPELINE_SCHEMA,
    YAML_TYPES,
    LoadPipeline,
    body_fields,
    json_body_error,
    media_type,
)
from rigd.service._deps import GUARDED, DaemonDep
from rigd.service._errors import errors

__all__ = ["router"]

router = APIRouter(tags=["pipeline"], dependencies=GUARDED)


@router.get("/v1/pipeline", responses=errors(401))
async def get_pipeline(daemon: DaemonDep) -> dict[str, Any]:
    """The loaded pipeline: actors, links and its text."""
    return daemon.pipeline_info()


@router.put(
    "/v1/pipeline",
    responses=errors(401, 404, 409, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": LOAD_PIPELINE_SCHEMA},
                "application/yaml": {"schema": {"type": "string"}},
                "application/x-www-form-urlencoded": {"schema": LOAD_PIPELINE_SCHEMA},
            },
        }
    },
)
async def put_pipeline(request: Request, daemon: DaemonDep) -> dict[str, Any]:
    """Load a pipeline: YAML text (``Content-Type: application/yaml``), or JSON
    ``{"file": "demo"}`` (a file in the pipeline directories) or ``{"text": "..."}``.
    A wrong pipeline is refused (422, naming file, line and key) and the one
    already loaded stays."""
    content_type = media_type(request)
    text: str | None = None
    name: str | None = None
    if content_type in YAML_TYPES:
        body = await request.body()
        try:
            text = body.decode()
        except UnicodeDecodeError:
            raise ValueError("the pipeline text is not UTF-8") from None
    else:
        fields = await body_fields(request, LOAD_FORM, "PUT /v1/pipeline", yaml=True)
        try:
            request_body = LoadPipeline.model_validate(fields)
        except ValueError as exc:
            raise json_body_error(exc) from None
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
    return await in_thread(daemon.load, text=text, name=name)
