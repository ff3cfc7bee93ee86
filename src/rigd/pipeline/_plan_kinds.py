"""Link kinds: what a link carries (``frames``, ``records`` or ``messages``).

An output's kind comes from the pipeline file (``outputs: {name: {kind: ...}}``),
else the class's ``output_kinds`` mapping, else its dtype (a structured dtype
makes ``records``, any other ``frames``). A ``messages`` output takes no
shape or dtype: its ring has byte slots of ``max_message_bytes`` (the
pipeline file's, else the class attribute, else 1 MiB). An input's kind is
the class's ``input_kinds`` entry (``any`` takes every kind); an input of a
class that takes any inputs (``input_names = None``, a recorder) takes any
kind, and other inputs take ``frames``. ``_plan_shapes`` checks each link's
two ends with these.
"""

from __future__ import annotations

from typing import Any

from rigd.actors import Actor
from rigd.config import ActorConfig, PipelineFile
from rigd.storage import DEFAULT_MAX_MESSAGE_BYTES

__all__ = ["declared_kinds", "input_kind", "max_message_bytes"]

_KINDS = ("frames", "records", "messages")
_OUTPUT_KEYS = {"shape", "dtype", "kind", "max_message_bytes"}


def declared_kinds(
    cls: type[Actor],
    actor: ActorConfig,
    key: tuple[Any, ...],
    pfile: PipelineFile,
    problems: list[str],
) -> dict[str, str]:
    """Each output's declared kind: the pipeline file's, else the class's ``output_kinds``."""
    declared = {k: str(v) for k, v in dict(getattr(cls, "output_kinds", {}) or {}).items()}
    for out, given in actor.outputs.items():
        where = pfile.where(*key[:2], "outputs", out) if key[0] == "actors" else pfile.where(*key)
        unknown = sorted(set(given) - _OUTPUT_KEYS)
        if unknown:
            problems.append(
                f"{where}: unknown key(s) {unknown}; an output takes {sorted(_OUTPUT_KEYS)}"
            )
        if out not in cls.output_names:
            problems.append(
                f"{where}: {actor.name} ({actor.class_path}) has no output {out!r}; its "
                f"outputs: {list(cls.output_names)}"
            )
        if "kind" in given:
            declared[out] = str(given["kind"])
    for out, kind in declared.items():
        if kind not in _KINDS:
            problems.append(
                f"{pfile.where(*key)}: output {actor.name}.{out} has kind {kind!r}; a kind is "
                f"one of {', '.join(_KINDS)}"
            )
    return {out: kind for out, kind in declared.items() if kind in _KINDS}


def max_message_bytes(cls: type[Actor], actor: ActorConfig, out: str) -> Any:
    given = actor.outputs.get(out, {})
    if "max_message_bytes" in given:
        return given["max_message_bytes"]
    return getattr(cls, "max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES)


def input_kind(cls: type[Actor], name: str) -> str:
    """The kind an input takes: the class's ``input_kinds``, else any (a class
    that takes any inputs) or ``frames``."""
    kinds = dict(getattr(cls, "input_kinds", {}) or {})
    if name in kinds:
        return str(kinds[name])
    return "any" if cls.input_names is None else "frames"
