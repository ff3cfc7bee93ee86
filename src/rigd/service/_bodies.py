"""The request bodies: models, their OpenAPI schemas, and JSON or forms read into them.

A body is JSON (or empty), or a form (``application/x-www-form-urlencoded``)
mapped onto the same fields as README's "Requests" says; anything else is a
415 that says what is taken.
"""

from __future__ import annotations

import json
import unicodedata
import urllib.parse
from typing import Annotated, Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, JsonValue, field_validator

from rigd._exceptions import UnsupportedMediaError
from rigd.service._run import meta_value
from rigd.storage import RESERVED_ATTRIBUTES

__all__ = [
    "LOAD_FORM",
    "LOAD_PIPELINE_SCHEMA",
    "START_FORM",
    "START_FORM_SCHEMA",
    "YAML_TYPES",
    "LoadPipeline",
    "StartRun",
    "Trigger",
    "UnsupportedMediaError",
    "body_fields",
    "json_body_error",
    "media_type",
    "start_run_schema",
]

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


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
LOAD_PIPELINE_SCHEMA = {
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


_FORM = "application/x-www-form-urlencoded"
#: The form fields each endpoint takes (besides ``meta.KEY`` for a run's metadata).
START_FORM = ("run_id", "metadata")
LOAD_FORM = ("file", "text")
_MAX_FORM_FIELDS = 1000
START_FORM_SCHEMA = {
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


def start_run_schema() -> dict[str, Any]:
    """StartRun's JSON schema, self-contained (a metadata value is any JSON)."""
    schema = StartRun.model_json_schema()
    schema.pop("$defs", None)
    text = json.dumps(schema).replace('{"$ref": "#/$defs/JsonValue"}', "{}")
    result: dict[str, Any] = json.loads(text)
    return result


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def body_fields(
    request: Request, form_fields: tuple[str, ...], endpoint: str, *, yaml: bool = False
) -> dict[str, Any]:
    """The body as a mapping: JSON (or no body), or a form mapped as README says.

    Raises:
        UnsupportedMediaError: another Content-Type (415, saying what is taken).
        RequestValidationError: a body that cannot be read (422, naming the field).
    """
    content_type = media_type(request)
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
    raise UnsupportedMediaError(
        f"{endpoint} does not take Content-Type {content_type!r}; send {takes} (README: 'Requests')"
    )


def json_body_error(exc: ValueError) -> RequestValidationError:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return RequestValidationError([{**e, "loc": ("body", *e.get("loc", ()))} for e in errors()])
    return RequestValidationError([{"loc": ("body",), "msg": str(exc), "type": "value_error"}])
