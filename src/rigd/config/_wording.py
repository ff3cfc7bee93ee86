"""What is wrong with a pipeline file's value, in the file's words, with the fix.

pydantic's messages name its own types ("Input should be a valid list",
"...instance of _ImprovActor"); ``rigd.config._yaml`` words an error of a
known kind here, keyed on pydantic's error type and the field's key (never
on its message text), and keeps pydantic's words for the others.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_NAME", "NUMBER_ERRORS", "elide", "keys_at", "not_a_number", "worded"]


def keys_at(model: Any, loc: tuple[Any, ...], aliases: Mapping[str, str]) -> list[str] | None:
    """The keys the dataclass at ``loc`` in ``model`` takes (as the file writes
    them), or None where ``loc`` is not a dataclass of ``model``'s."""
    kind = model
    for part in (*loc, None):
        while True:  # Annotated[X, ...] -> X; X | None -> X; list[X] -> X at an index
            origin, args = typing.get_origin(kind), typing.get_args(kind)
            if origin is typing.Annotated:
                kind = args[0]
            elif origin in (types.UnionType, typing.Union):
                kinds = [a for a in args if a is not type(None)]
                kind = kinds[0] if len(kinds) == 1 else None
            elif origin is list and isinstance(part, int):
                kind, part = args[0], "done"
            else:
                break
        if not (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
            return None
        names = [f.name for f in dataclasses.fields(kind)]
        if part is None:
            return [aliases.get(n, n) for n in names]
        if part == "done":
            continue
        if part not in names:
            return None
        kind = typing.get_type_hints(kind, include_extras=True)[part]
    return None


#: pydantic's errors for a value given for a number field.
NUMBER_ERRORS = ("int_type", "float_type", "int_parsing", "float_parsing", "int_from_float")


def not_a_number(kind: str, value: Any, loc: tuple[Any, ...]) -> str | None:
    """What is wrong with ``value`` given for a number field (``kind``: pydantic's
    error type, for an ``int`` or ``float`` field), or None to keep pydantic's words."""
    start = max((i for i, p in enumerate(loc) if isinstance(p, str)), default=0)
    name = "".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc[start:]) or "it"
    whole = kind.startswith("int")
    number = "a whole number" if whole else "a number"
    if isinstance(value, bool):
        return f"{name} is {number}, got {str(value).lower()}"
    if isinstance(value, float) and whole:
        return f"{name} is {number}, got {value!r}"
    if isinstance(value, str):
        number_text = _as_yaml_number(value.strip(), whole=whole)
        if number_text is None:
            return f"{name} is {number}, got the text {value!r}"
        if "e" in value.lower():
            return (
                f"{name} is {number}, got the text {value!r} (YAML reads an exponent as a "
                f"number only with a '.' and a sign: 1.0e+3, not 1e3 or 1.0e3); write {number_text}"
            )
        return f"{name} is {number}, got the text {value!r}; write {number_text} without quotes"
    return None


def _as_yaml_number(text: str, *, whole: bool) -> str | None:
    """``text`` (a number Python reads) as YAML reads a number, or None."""
    if whole:
        return text if re.fullmatch(r"[-+]?[0-9]+", text) else None
    try:
        value = float(text)
    except ValueError:
        return None
    if not math.isfinite(value):
        return None
    written = repr(value)  # 1000.0, 1e+30, 1.5e-07: the exponent has its sign
    mantissa, e, exponent = written.partition("e")
    return f"{mantissa if '.' in mantissa else mantissa + '.0'}{e}{exponent}"


def worded(kind: str, loc: tuple[Any, ...], value: Any) -> str | None:
    """The file's words for pydantic's error ``kind`` at ``loc`` (the file's keys,
    ``class`` not ``class_path``) on ``value``, or None to keep pydantic's."""
    key = next((p for p in reversed(loc) if isinstance(p, str)), None)
    in_actor = len(loc) >= 2 and loc[0] == "actors"
    improv = in_actor and isinstance(loc[1], str)  # improv's actors are a mapping by name
    if kind in ("model_type", "dataclass_type") and in_actor and len(loc) == 2:
        if improv:
            return (
                f"actor {loc[1]!r} needs its package and class, e.g. "
                "{package: actors.sample_generator, class: Generator}"
            )
        return f"an actor is a mapping with its name and class, e.g. {{name: stats, class: {_EG}}}"
    if kind == "string_too_short" and in_actor and key in ("class", "package"):
        if not improv:
            return f"class is an import path, e.g. {_EG}; got an empty one"
        example = "Generator" if key == "class" else "actors.sample_generator"
        what = "the name of a class in package" if key == "class" else "a module"
        return f"{key} is {what}, e.g. {example}; got an empty one"
    if kind == "string_too_long" and key in ("name", "node") and isinstance(value, str):
        return (
            f"{key} {elide(value)!r} is {len(value)} characters; a name is at most "
            f"{MAX_NAME} (names go into ring and shared-memory segment names, 255 bytes "
            "at most): shorten it, e.g. 'camera'"
        )
    if kind == "list_type" and key == "cpus":
        return f"cpus is a list of CPU numbers, e.g. [2]; got {value!r}"
    if kind in ("greater_than_equal", "less_than_equal") and key == "slots":
        bound = "at least 2" if kind == "greater_than_equal" else "at most 4096"
        return f"slots is {bound} (a ring of 2..4096 frames), got {value!r}"
    if kind == "finite_number":
        what = "" if key in ("num_cpus", "num_gpus") else " of seconds"
        return f"{key} is a finite number{what}, got {value!r}"
    return None


#: The most characters a pipeline file's name takes (``_pipeline_file.Name``).
MAX_NAME = 64


def elide(text: str, width: int = 40) -> str:
    """``text`` if it fits ``width`` characters, else its start, ``...`` and its end."""
    if len(text) <= width:
        return text
    tail = (width - 3) // 2
    return f"{text[: width - 3 - tail]}...{text[-tail:]}"


#: A class path for the examples.
_EG = "rigd.pipeline.FrameStats"
