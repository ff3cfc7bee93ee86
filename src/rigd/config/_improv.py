"""improv's config files, read as rigd pipeline files.

improv's format (its ``Config``)::

    actors:
      Generator:
        package: actors.sample_generator   # a module, imported from the current directory
        class: Generator
        any_option: 3                      # passed to the class as a keyword
    connections:
      Generator.q_out: [Processor.q_in]    # one output to one or more inputs
    settings: {use_watcher: false}         # improv's server settings (not used by rigd)

is told from rigd's by its ``actors`` being a mapping (rigd's is a list).
``improv_pipeline_text`` turns it into the rigd pipeline file it means:
each actor ``{name, class: package.class, options: {the other keys}}``, each
connection a lossless link ``Generator.q_out -> Processor.q_in`` whose output
is of kind ``messages`` (``outputs: {q_out: {kind: messages}}``), the name
of the file (without suffix) as the pipeline's name. The actor classes must
be rigd actors: improv actors ported to ``rigd.compat.improv.Actor`` (their
imports changed) carry their ``q_in``/``q_out`` messages over such links.
``rigd convert FILE`` prints the result; ``rigd run FILE`` and the daemon
load improv's files directly through it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from rigd._exceptions import PipelineFileError
from rigd.config._format import is_improv
from rigd.config._yaml import parse_yaml, validate_data

__all__ = ["improv_pipeline_text"]

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
_ENDPOINT = re.compile(r"^\s*([^.\s]+)\.([^.\s]+)\s*$")


class _ImprovActor(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    package: str = Field(min_length=1)
    class_name: str = Field(alias="class", min_length=1)


class _ImprovFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    actors: dict[str, _ImprovActor] = Field(min_length=1)
    connections: dict[str, list[str] | str] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)


def improv_pipeline_text(
    path: str,
    text: str,
    *,
    allow_aliases: bool = True,
    parsed: tuple[dict[str, Any], dict[tuple[Any, ...], int]] | None = None,
) -> str | None:
    """The rigd pipeline file an improv config file means, or None if ``text`` is not one.

    ``parsed``: ``text`` already parsed (``rigd.config._yaml.parse_yaml``), so
    it is not parsed again.

    Raises:
        PipelineFileError: it is improv's format, but wrong (an actor without
            ``package`` or ``class``, a connection not ``Actor.link``), with
            file, line and key.
    """
    if parsed is None:
        try:
            parsed = parse_yaml(path, text, PipelineFileError, "", allow_aliases=allow_aliases)
        except PipelineFileError:
            return None  # not a mapping, or not YAML: the rigd reader says what is wrong
    data, lines = parsed
    if not is_improv(data):
        return None
    improv = validate_data(_ImprovFile, path, data, lines, PipelineFileError)
    problems: list[str] = []
    links: list[str] = []
    outputs: dict[str, dict[str, Any]] = {}
    for source, targets in improv.connections.items():
        where = _where(path, lines.get(("connections", source)), f"connections.{source}")
        if not _ENDPOINT.match(source):
            problems.append(f"{where}: a connection is 'Actor.q_out: [Actor.q_in]', got {source!r}")
            continue
        for target in [targets] if isinstance(targets, str) else targets:
            if not _ENDPOINT.match(target):
                problems.append(f"{where}: a connection's target is 'Actor.q_in', got {target!r}")
                continue
            links.append(f"{source.strip()} -> {target.strip()}")
        if match := _ENDPOINT.match(source):
            outputs.setdefault(match[1], {})[match[2]] = {"kind": "messages"}
    if problems:
        raise PipelineFileError(problems)
    actors = []
    for name, actor in improv.actors.items():
        entry: dict[str, Any] = {"name": name, "class": f"{actor.package}.{actor.class_name}"}
        if actor.model_extra:
            entry["options"] = dict(actor.model_extra)
        if name in outputs:
            entry["outputs"] = outputs[name]
        actors.append(entry)
    pipeline: dict[str, Any] = {"name": _pipeline_name(path), "actors": actors}
    if links:
        pipeline["links"] = links
    header = [f"# Converted from improv's config file {Path(path).name} by rigd."]
    ignored = sorted(set(improv.model_extra or {}) | ({"settings"} if improv.settings else set()))
    if ignored:
        header.append(f"# Not used by rigd: {', '.join(ignored)} (improv's server settings).")
    body: str = yaml.safe_dump(pipeline, sort_keys=False, default_flow_style=False)
    return "\n".join(header) + "\n" + body


def _pipeline_name(path: str) -> str:
    name = _NOT_NAME.sub("_", Path(path).stem)[:64] or "improv"
    return name if not name[0].isdigit() else f"_{name[:63]}"


def _where(path: str, line: int | None, key: str) -> str:
    return f"{path}, line {line}, {key}" if line else f"{path}, {key}"
