"""From a pipeline file to a plan: classes imported, links checked, rings sized.

Everything that can be wrong with a pipeline is found here, before anything
starts, and reported as one ``PipelineFileError`` naming the file, the line
and the key of each problem: a class that cannot be imported, a link naming
an unknown actor or endpoint, a cycle, an input with no writer or two, and
linked endpoints whose shapes or dtypes disagree, and links whose kinds
disagree (``_plan_kinds``).

This module checks the actors, their classes and the links;
``_plan_classes`` imports the classes (or refuses their modules),
``_plan_shapes`` carries shapes and dtypes along the links and sizes the
rings, and ``_plan_records`` holds the ``Plan`` it returns.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rigd.actors import Actor
from rigd.config import ActorConfig, LinkConfig, PipelineFile, PipelineFileError, load_pipeline
from rigd.pipeline._plan_classes import (
    actor_class,
    check_options,
    import_path,
    not_an_import_path,
    refused_module,
)
from rigd.pipeline._plan_records import ActorPlan, Plan, RingPlan
from rigd.pipeline._plan_shapes import ShapeStage

__all__ = ["ActorPlan", "Plan", "RingPlan", "check_pipeline", "plan_pipeline", "record_stream"]

_RECORDER_CLASS = "rigd.pipeline.HDF5Recorder"


def plan_pipeline(
    source: str | Path | PipelineFile,
    *,
    allowed_modules: Sequence[str] | None = None,
    confine: Callable[[type[Actor], dict[str, Any]], dict[str, Any]] | None = None,
) -> Plan:
    """Load (if needed) and check a pipeline; return its plan.

    Args:
        source: a pipeline file's path, or a loaded file.
        allowed_modules: if given, the module prefixes classes may come from;
            a class from any other module is refused before it is imported
            (the daemon's guard against running arbitrary code).
        confine: if given, called as ``confine(cls, options)`` for each actor
            once its class is imported and before any of its code runs; it
            returns the options to use (places made absolute) or raises
            ``ValueError`` naming what is wrong (the daemon's confinement).

    Raises:
        FileNotFoundError: no such file.
        PipelineFileError: every problem found, each with file, line and key.
    """
    return check_pipeline(source, allowed_modules=allowed_modules, confine=confine).plan({})


def record_stream(endpoint: str) -> str:
    """The stream the ``record:`` shorthand records ``endpoint`` (``actor.output``) as:
    ``actor`` for an output named ``frames`` or ``output``, else ``actor_output``."""
    writer, output = endpoint.split(".")
    return writer if output in ("frames", "output") else f"{writer}_{output}"


def check_pipeline(
    source: str | Path | PipelineFile,
    *,
    allowed_modules: Sequence[str] | None = None,
    confine: Callable[[type[Actor], dict[str, Any]], dict[str, Any]] | None = None,
) -> ShapeStage:
    """``plan_pipeline``'s first stage: classes, options, links, cycles and
    metadata checked; shapes and rings not yet (``ShapeStage.plan``: a class's
    ``describe_outputs`` may open a file or a device).

    Raises:
        FileNotFoundError: no such file.
        PipelineFileError: every problem found, each with file, line and key.
    """
    pfile = source if isinstance(source, PipelineFile) else load_pipeline(source)
    config = pfile.config
    problems: list[str] = []
    available_cpus = os.sched_getaffinity(0)
    actors: dict[str, ActorConfig] = {}
    index: dict[str, int] = {}
    # A name given twice: the first keeps it; links naming it are not checked
    # (which actor they mean is the question), so only the duplicate is said.
    duplicates: set[str] = set()
    for i, actor in enumerate(config.actors):
        if actor.name in actors:
            first = pfile.line("actors", index[actor.name])
            problems.append(
                f"{pfile.where('actors', i, 'name')}: a second actor named {actor.name!r}"
                f"{f' (the first is at line {first})' if first else ''}; actor names must be "
                "unique: rename or remove one"
            )
            duplicates.add(actor.name)
            continue
        actors[actor.name] = actor
        index[actor.name] = i
        missing = sorted(set(actor.cpus or ()) - available_cpus)
        if missing:
            problems.append(
                f"{pfile.where('actors', i, 'cpus')}: CPU {', '.join(map(str, missing))} "
                f"{'is' if len(missing) == 1 else 'are'} not available on this machine; "
                f"rigd may use CPUs {', '.join(map(str, sorted(available_cpus)))}"
            )

    links = list(config.links)
    link_keys: list[tuple[Any, ...]] = [("links", i) for i in range(len(links))]
    # The record: shorthand adds a recorder fed by lossless links.
    if config.record:
        slots = config.recording.slots
        if "recorder" not in actors:
            options = config.recorder_options()
            actors["recorder"] = ActorConfig(
                name="recorder", class_path=_RECORDER_CLASS, options=options
            )
            index["recorder"] = -1
        else:  # the file's recorder takes the recording: keys it does not give
            own = actors["recorder"]
            actors["recorder"] = dataclasses.replace(
                own, options=config.recorder_options(own.options)
            )
        for j, endpoint in enumerate(config.record):
            stream = record_stream(endpoint)
            links.append(LinkConfig(link=f"{endpoint} -> recorder.{stream}", slots=slots))
            link_keys.append(("record", j))

    classes: dict[str, type[Actor]] = {}
    for name, actor in actors.items():
        key = ("actors", index[name], "class") if index[name] >= 0 else ("record",)
        module = actor.class_path.rpartition(".")[0]
        if (bare := not_an_import_path(actor.class_path)) is not None:
            problems.append(f"{pfile.where(*key)}: {bare}")
            continue
        if allowed_modules is not None and not any(
            module == p or module.startswith(p + ".") for p in allowed_modules
        ):
            problems.append(
                f"{pfile.where(*key)}: class {actor.class_path!r} is from module {module!r}, "
                f"which this service does not allow (allowed: {', '.join(allowed_modules)}); "
                "add its package to allowed_modules in the service config"
            )
            continue
        refused = refused_module(module)
        if refused is not None:
            problems.append(
                f"{pfile.where(*key)}: class {actor.class_path!r} is refused: {refused}; "
                "importing it would run it. Pipeline classes come from library modules"
            )
            continue
        try:
            value = actor_class(import_path(actor.class_path))
        except Exception as exc:  # noqa: BLE001 - any import failure is the file's problem
            problems.append(
                f"{pfile.where(*key)}: class {actor.class_path!r} cannot be imported: "
                f"{type(exc).__name__}: {exc}"
            )
            continue
        if not (isinstance(value, type) and issubclass(value, Actor)):
            problems.append(
                f"{pfile.where(*key)}: {actor.class_path!r} is not a subclass of rigd.Actor; "
                "pipeline actors subclass rigd.Actor and define run_step()"
            )
            continue
        classes[name] = value

    if config.record and index["recorder"] >= 0 and "recorder" in classes:
        _check_named_recorder(pfile, actors["recorder"], classes, problems, links, link_keys)

    # Options: the class's constructor must take them.
    for name, cls in list(classes.items()):
        key = ("actors", index[name], "options") if index[name] >= 0 else ("recording",)
        wrong = check_options(cls, actors[name].options)
        if wrong:
            problems.append(f"{pfile.where(*key)}: {name} ({actors[name].class_path}): {wrong}")
            continue
        if confine is not None:
            try:
                confined = confine(cls, dict(actors[name].options))
            except ValueError as exc:
                problems.append(f"{pfile.where(*key)}: {name} ({actors[name].class_path}): {exc}")
                del classes[name]  # none of its code runs
                continue
            actors[name] = dataclasses.replace(actors[name], options=confined)

    # Links: endpoints exist, one writer per input.
    writers_of: dict[tuple[str, str], int] = {}
    edges: dict[str, set[str]] = {name: set() for name in actors}
    for link, key in zip(links, link_keys, strict=True):
        (src, out), (dst, inp) = link.source, link.target
        if duplicates & {src, dst}:
            writers_of.setdefault((dst, inp), links.index(link))  # its reader is fed
            continue
        bad = False
        for actor_name in (src, dst):
            if actor_name not in actors:
                problems.append(
                    f"{pfile.where(*key)}: link {link.link!r} names actor {actor_name!r}, "
                    f"which is not in actors ({', '.join(sorted(actors))})"
                )
                bad = True
        if bad:
            continue
        if src in classes and out not in classes[src].output_names:
            problems.append(
                f"{pfile.where(*key)}: {src} ({actors[src].class_path}) has no output {out!r}; "
                f"its outputs: {list(classes[src].output_names)}"
            )
        allowed = classes[dst].input_names if dst in classes else None
        if allowed is not None and inp not in allowed:
            problems.append(
                f"{pfile.where(*key)}: {dst} ({actors[dst].class_path}) has no input {inp!r}; "
                f"its inputs: {list(allowed)}"
            )
        if (dst, inp) in writers_of:
            problems.append(
                f"{pfile.where(*key)}: input {dst}.{inp} already has a writer "
                f"(link {links[writers_of[dst, inp]].link!r}); an input takes one link"
            )
            continue
        writers_of[dst, inp] = links.index(link)
        edges[dst].add(src)
    for name, cls in classes.items():
        for inp in cls.input_names or ():
            if (name, inp) not in writers_of and name not in duplicates:
                where = (
                    pfile.where("actors", index[name])
                    if index[name] >= 0
                    else pfile.where("record")
                )
                problems.append(
                    f"{where}: input {name}.{inp} has no writer; link an output "
                    f"to it ('some_actor.output -> {name}.{inp}')"
                )

    order = _topological(edges, problems, pfile)
    from rigd.storage import check_metadata  # here: storage is not a planning import

    try:
        check_metadata(config.run.metadata)  # as a run will store it
    except ValueError as exc:
        problems.append(f"{pfile.where('run', 'metadata')}: {exc}")
    if problems:
        raise PipelineFileError(problems)

    return ShapeStage(
        pfile=pfile,
        order=tuple(order),
        actors=actors,
        classes=classes,
        index=index,
        links=tuple(links),
        link_keys=tuple(link_keys),
        edges={name: tuple(sorted(up)) for name, up in edges.items()},
    )


def _check_named_recorder(
    pfile: PipelineFile,
    recorder: ActorConfig,
    classes: dict[str, type[Actor]],
    problems: list[str],
    links: list[LinkConfig],
    link_keys: list[tuple[Any, ...]],
) -> None:
    """The ``record:`` shorthand records into the actor named ``recorder``
    when the file has one (by design: its options are the recording's). If
    that actor's class does not record (``records = True``), that is the one
    problem: the shorthand's links into it are dropped, so they add no
    "has no input" or cycle message for the same cause."""
    cls = classes["recorder"]
    if getattr(cls, "records", False) is True:
        return
    problems.append(
        f"{pfile.where('record')}: the record: shorthand records into the actor named "
        f"'recorder', a {cls.__name__} ({recorder.class_path}), which does not record; "
        f"rename that actor, or make it an HDF5Recorder ({_RECORDER_CLASS})"
    )
    kept = [(link, key) for link, key in zip(links, link_keys, strict=True) if key[0] != "record"]
    links[:] = [link for link, _ in kept]
    link_keys[:] = [key for _, key in kept]


def _topological(edges: dict[str, set[str]], problems: list[str], pfile: PipelineFile) -> list[str]:
    """Actors with their upstream first; a cycle is a problem."""
    order: list[str] = []
    state: dict[str, int] = {}  # 1: visiting, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name) :], name]
            problems.append(
                f"{pfile.where('links')}: the links make a cycle ({' -> '.join(cycle)}); "
                "a pipeline's frames flow one way"
            )
            return
        state[name] = 1
        for upstream in sorted(edges[name]):
            visit(upstream, [*path, name])
        state[name] = 2
        order.append(name)

    for name in edges:
        visit(name, [])
    return order
