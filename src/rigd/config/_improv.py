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
    record: [Generator.q_out]              # rigd's own keys are carried over as they are

is told from rigd's by its ``actors`` being a mapping (rigd's is a list).
``improv_pipeline_text`` turns it into the rigd pipeline file it means:
each actor ``{name, class: package.class, options: {the other keys}}``, each
connection a lossless link ``Generator.q_out -> Processor.q_in`` whose output
is of kind ``messages`` (``outputs: {q_out: {kind: messages}}``), the name
of the file (without suffix) as the pipeline's name. rigd's own keys
(``name``, ``record``, ``recording``, ``run``, ``realtime``) are carried into
the converted file, where they are checked as in rigd's format. improv's
settings that rigd does not use (``settings``; ``redis_config``, which
improv's ``Config`` reads for its store) are ignored with a logged warning
and a comment in the converted file. Any other key is an error naming it
(``links`` too: an improv file's links are its ``connections``). The actor classes must
be rigd actors: improv actors ported to ``rigd.compat.improv.Actor`` (their
imports changed) carry their ``q_in``/``q_out`` messages over such links.
``rigd convert FILE`` prints the result; ``rigd run FILE`` and the daemon
load improv's files directly through it.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from rigd._exceptions import PipelineFileError
from rigd.config._format import is_improv
from rigd.config._improv_checks import missing_modules, undefined_actors
from rigd.config._yaml import parse_yaml, validate_data

__all__ = ["improv_pipeline_text"]

_log = logging.getLogger(__name__)

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")
#: improv's settings that rigd does not use, and what they are: ``settings``
#: (improv's guide, "Pipeline specification"), ``redis_config`` (read by
#: improv's ``Config`` for its Redis store).
_IMPROV_UNUSED = {
    "settings": "improv's server settings",
    "redis_config": "improv's data store (Redis) settings",
}
#: rigd's own keys, carried into the converted file as they are.
_RIGD_KEYS = ("name", "record", "recording", "run", "realtime")
_ENDPOINT = re.compile(r"^\s*([^.\s]+)\.([^.\s]+)\s*$")
#: ``parse_yaml``'s words for text that is not a mapping.
_SHAPE = "a config file is a mapping"


class _ImprovActor(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    package: str = Field(min_length=1)
    class_name: str = Field(alias="class", min_length=1)


class _ImprovFile(BaseModel):
    model_config = ConfigDict(extra="allow")

    actors: dict[str, _ImprovActor] = Field(min_length=1)
    connections: dict[str, list[str] | str] = Field(default_factory=dict)
    settings: dict[str, Any] | None = None
    redis_config: dict[str, Any] | None = None


def improv_pipeline_text(
    path: str,
    text: str,
    *,
    allow_aliases: bool = True,
    parsed: tuple[dict[str, Any], dict[tuple[Any, ...], int]] | None = None,
    check_modules: bool = False,
) -> str | None:
    """The rigd pipeline file an improv config file means, or None if ``text`` is not one.

    ``parsed``: ``text`` already parsed (``rigd.config._yaml.parse_yaml``), so
    it is not parsed again. ``check_modules``: refuse an actor whose
    ``package`` cannot be found (``rigd convert``'s check; ``rigd run`` and
    ``rigd load`` refuse it when they import its class).

    rigd's own keys (``name``, ``record``, ``recording``, ``run``,
    ``realtime``) are carried into the result as they are (checked when it is
    loaded). improv's settings that rigd does not use (``settings``,
    ``redis_config``) are left out, each with a warning logged on this
    module's logger (``rigd convert`` prints it) and named in a comment.

    Raises:
        PipelineFileError: not YAML that rigd reads (a syntax error, a key
            given twice, each named as ``rigd run`` names it), or improv's
            format, but wrong (an actor without
            ``package`` or ``class``, a connection not ``Actor.link``, a
            top-level key neither improv's nor rigd's, rigd's ``links``, a
            connection naming an actor the file does not define, or with
            ``check_modules`` a package that cannot be found), with file,
            line and key (``_improv_checks``).
    """
    if parsed is None:
        try:
            parsed = parse_yaml(path, text, PipelineFileError, _SHAPE, allow_aliases=allow_aliases)
        except PipelineFileError as exc:
            if exc.problems == [f"{path}: {_SHAPE}"]:
                return None  # not a mapping: no config file of either format
            raise  # not YAML rigd reads (a key given twice): as `rigd run` says it
    data, lines = parsed
    if not is_improv(data):
        return None
    improv = validate_data(_ImprovFile, path, data, lines, PipelineFileError)
    problems: list[str] = list(_unknown_keys(path, improv, lines))
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
    problems += undefined_actors(path, improv.connections, improv.actors, lines)
    if check_modules:
        packages = {name: actor.package for name, actor in improv.actors.items()}
        problems += missing_modules(path, packages, lines)
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
    extra = improv.model_extra or {}
    pipeline.update({key: extra[key] for key in _RIGD_KEYS if key in extra})
    header = [f"# Converted from improv's config file {Path(path).name} by rigd."]
    for key, what in _IMPROV_UNUSED.items():
        value = getattr(improv, key)
        if not value:
            continue
        header.append(f"# Not used by rigd: {key} ({what}).")
        _log.warning(
            "%s: %s (%s) are not used by rigd; ignored",
            _where(path, lines.get((key,)), key),
            what,
            ", ".join(map(str, value)),
        )
    body: str = yaml.safe_dump(pipeline, sort_keys=False, default_flow_style=False)
    return "\n".join(header) + "\n" + body


def _unknown_keys(path: str, improv: _ImprovFile, lines: dict[tuple[Any, ...], int]) -> list[str]:
    """A problem for each top-level key that is neither improv's nor rigd's, and
    for rigd's ``links`` (an improv file's links are its ``connections``)."""
    problems = []
    for key in improv.model_extra or {}:
        if key in _RIGD_KEYS:
            continue
        where = _where(path, lines.get((key,)), str(key))
        if key == "links":
            problems.append(
                f"{where}: links are rigd's format; an improv file links actors under "
                "connections ('Generator.q_out: [Processor.q_in]'): move them there, or "
                "take them out, convert the file (rigd convert) and add them to the "
                "converted file, which is rigd's format"
            )
            continue
        problems.append(
            f"{where}: unknown key {key!r}: neither improv's (actors, connections, "
            f"{', '.join(_IMPROV_UNUSED)}) nor rigd's ({', '.join(_RIGD_KEYS)}); "
            "check its spelling, or remove it"
        )
    return problems


def _pipeline_name(path: str) -> str:
    name = _NOT_NAME.sub("_", Path(path).stem)[:64] or "improv"
    return name if not name[0].isdigit() else f"_{name[:63]}"


def _where(path: str, line: int | None, key: str) -> str:
    return f"{path}, line {line}, {key}" if line else f"{path}, {key}"
