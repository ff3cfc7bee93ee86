"""From a pipeline file to a plan: classes imported, links checked, rings sized.

Everything that can be wrong with a pipeline is found here, before anything
starts, and reported as one ``PipelineFileError`` naming the file, the line
and the key of each problem: a class that cannot be imported, a link naming
an unknown actor or endpoint, a cycle, an input with no writer or two, and
linked endpoints whose shapes or dtypes disagree, and links whose kinds
disagree.

Kinds (``frames``, ``records``, ``messages``): what a link carries. An
output's kind comes from the pipeline file (``outputs: {name: {kind: ...}}``),
else the class's ``output_kinds`` mapping, else its dtype (a structured dtype
makes ``records``, any other ``frames``). A ``messages`` output takes no
shape or dtype: its ring has byte slots of ``max_message_bytes`` (the
pipeline file's, else the class attribute, else 1 MiB). An input's kind is
the class's ``input_kinds`` entry (``any`` takes every kind); an input of a
class that takes any inputs (``input_names = None``, a recorder) takes any
kind, and other inputs take ``frames``.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rigd.actors import Actor
from rigd.config import ActorConfig, PipelineFile, PipelineFileError, load_pipeline
from rigd.pipeline._device import DeviceSource
from rigd.storage import (
    DEFAULT_MAX_MESSAGE_BYTES,
    FrameRing,
    RecordField,
    dtype_text,
    message_ring_shape,
    parse_dtype,
    shm_free_bytes,
)

__all__ = ["ActorPlan", "Plan", "RingPlan", "plan_pipeline"]

FrameSpec = tuple[tuple[int, ...], str]
_RECORDER_CLASS = "rigd.pipeline.HDF5Recorder"


@dataclass(frozen=True)
class RingPlan:
    """One ring: an actor's output, read by one or more inputs."""

    name: str  # "<actor>.<output>"
    writer: str
    output: str
    shape: tuple[int, ...]
    dtype: str
    slots: int
    #: (actor, input, policy, low_latency) per reader.
    readers: tuple[tuple[str, str, str, bool], ...]
    #: What each column of a records output means (the class's ``describe_fields``).
    fields: tuple[RecordField, ...] = ()
    #: ``frames``, ``records`` or ``messages`` (then ``shape`` is the byte slot).
    kind: str = "frames"


@dataclass(frozen=True)
class ActorPlan:
    name: str
    cls: type[Actor]
    config: ActorConfig
    options: dict[str, Any]
    #: Names of the actors whose outputs this one reads.
    upstream: tuple[str, ...]
    #: A device source (``DeviceSource``): the supervisor starts it first and it
    #: opens its device and reports its shapes and settings.
    opens_device: bool = False

    @property
    def is_source(self) -> bool:
        return not self.upstream


@dataclass(frozen=True)
class Plan:
    """A checked pipeline: actors in dependency order (sources first) and rings.

    ``deferred`` names the actors whose output shapes are not known yet: the
    device sources (they report them once their device is open, in their
    own process) and every actor downstream of one. Their rings are not in
    ``rings`` until ``resolve`` is given what the devices reported.
    """

    file: PipelineFile
    actors: tuple[ActorPlan, ...]
    rings: tuple[RingPlan, ...]
    recorders: tuple[str, ...] = field(default=())
    deferred: tuple[str, ...] = field(default=())
    _stage: Any = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str:
        return self.file.config.name

    def _is_device(self, name: str) -> bool:
        return any(a.name == name and a.opens_device for a in self.actors)

    @property
    def resolved(self) -> bool:
        """Whether every ring's shape is known."""
        return not self.deferred

    def resolve(self, device_outputs: Mapping[str, Mapping[str, FrameSpec]]) -> Plan:
        """The plan with what each device source reported: every shape known.

        Args:
            device_outputs: per device source, each output's (shape, dtype).

        Raises:
            PipelineFileError: the reported shapes do not fit the links (with
                file, line and key), or a device source is missing.
        """
        missing = [n for n in self.deferred if n in device_outputs or self._is_device(n)]
        missing = [n for n in missing if n not in device_outputs]
        if missing:
            raise ValueError(f"no shapes reported by device source(s) {missing}")
        if self._stage is None:
            return self
        plan: Plan = self._stage.plan(device_outputs)
        return plan


def _import(path: str) -> Any:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ImportError(f"{path!r} is not a dotted import path (module.Class)")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from None


#: Modules never imported through a pipeline, whatever the allow-list: the
#: daemon's own (its CLI, its server) and program entry points.
_NEVER_IMPORTED = ("rigd.service", "rigd.__main__", "rigd.actors._worker")


def _entry_point_modules() -> set[str]:
    """Modules that are programs: every installed console script's module."""
    from importlib.metadata import entry_points

    found = set()
    for group in ("console_scripts", "gui_scripts"):
        for entry in entry_points(group=group):
            found.add(entry.value.split(":")[0].strip())
    return found


def refused_module(module: str) -> str | None:
    """Why ``module`` may not be imported through a pipeline, or None.

    Importing a module runs it: a module whose import has side effects (a
    ``__main__``, a program's entry point, the daemon's own CLI and server)
    must never be reachable from a pipeline file.
    """
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        return f"{module!r} is not a module name"
    if any(part.startswith("__") for part in parts):
        return f"module {module!r} is a program's __main__ (or another dunder module)"
    for never in _NEVER_IMPORTED:
        if module == never or module.startswith(never + "."):
            return f"module {module!r} is part of the daemon itself"
    if module in _entry_point_modules():
        return f"module {module!r} is a program's entry point (a console script)"
    return None


def _actor_class(value: Any) -> Any:
    # A class already made remote with @rigd.remote: plan with the class itself.
    return getattr(value, "_cls", value)


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
    pfile = source if isinstance(source, PipelineFile) else load_pipeline(source)
    config = pfile.config
    problems: list[str] = []
    available_cpus = os.sched_getaffinity(0)
    actors: dict[str, ActorConfig] = {}
    index: dict[str, int] = {}
    for i, actor in enumerate(config.actors):
        if actor.name in actors:
            problems.append(
                f"{pfile.where('actors', i, 'name')}: a second actor named "
                f"{actor.name!r}; actor names must be unique"
            )
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
        from rigd.config import LinkConfig

        if "recorder" not in actors:
            recording = config.recording.model_dump()
            slots = recording.pop("slots")
            actors["recorder"] = ActorConfig.model_validate(
                {"name": "recorder", "class": _RECORDER_CLASS, "options": recording}
            )
            index["recorder"] = -1
        else:
            slots = config.recording.slots
        for j, endpoint in enumerate(config.record):
            writer, output = endpoint.split(".")
            stream = writer if output in ("frames", "output") else f"{writer}_{output}"
            links.append(LinkConfig(link=f"{endpoint} -> recorder.{stream}", slots=slots))
            link_keys.append(("record", j))

    classes: dict[str, type[Actor]] = {}
    for name, actor in actors.items():
        key = ("actors", index[name], "class") if index[name] >= 0 else ("record",)
        module = actor.class_path.rpartition(".")[0]
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
            value = _actor_class(_import(actor.class_path))
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

    # Options: the class's constructor must take them.
    for name, cls in list(classes.items()):
        key = ("actors", index[name], "options") if index[name] >= 0 else ("recording",)
        wrong = _check_options(cls, actors[name].options)
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
            actors[name] = actors[name].model_copy(update={"options": confined})

    # Links: endpoints exist, one writer per input.
    writers_of: dict[tuple[str, str], int] = {}
    edges: dict[str, set[str]] = {name: set() for name in actors}
    for link, key in zip(links, link_keys, strict=True):
        (src, out), (dst, inp) = link.source, link.target
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
            if (name, inp) not in writers_of:
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
    if problems:
        raise PipelineFileError(problems)

    stage = _ShapeStage(
        pfile=pfile,
        order=tuple(order),
        actors=actors,
        classes=classes,
        index=index,
        links=tuple(links),
        link_keys=tuple(link_keys),
        edges={name: tuple(sorted(up)) for name, up in edges.items()},
    )
    return stage.plan({})


@dataclass(frozen=True)
class _ShapeStage:
    """A checked pipeline before its shapes are known: what ``resolve`` needs."""

    pfile: PipelineFile
    order: tuple[str, ...]
    actors: Mapping[str, ActorConfig]
    classes: Mapping[str, type[Actor]]
    index: Mapping[str, int]
    links: tuple[Any, ...]
    link_keys: tuple[tuple[Any, ...], ...]
    edges: Mapping[str, tuple[str, ...]]

    def _check_shm(self, rings: tuple[RingPlan, ...]) -> None:
        """Refuse, at load, rings that /dev/shm cannot hold (not a failure at start)."""
        if not rings:
            return
        total = sum(_ring_bytes(r) for r in rings)
        free = shm_free_bytes()
        if total <= free:
            return
        big = max(rings, key=_ring_bytes)
        key = next(
            (
                k
                for link, k in zip(self.links, self.link_keys, strict=True)
                if f"{link.source[0]}.{link.source[1]}" == big.name
            ),
            self._key(big.writer, "options"),
        )
        raise PipelineFileError(
            [
                f"{self.pfile.where(*key)}: the rings need {total / 2**20:.1f} MiB of /dev/shm "
                f"but it has {free / 2**20:.1f} MiB free (the largest, {big.name}: {big.slots} "
                f"slots of {_fmt((big.shape, big.dtype))} frames, {_ring_bytes(big) / 2**20:.1f} "
                "MiB); use fewer or smaller slots or frames, or enlarge /dev/shm "
                "(docker: --shm-size)"
            ]
        )

    def _key(self, name: str, *rest: Any) -> tuple[Any, ...]:
        if self.index[name] >= 0:
            return ("actors", self.index[name], *rest)
        return ("recording",)

    def plan(self, device_specs: Mapping[str, Mapping[str, FrameSpec]]) -> Plan:
        """Shapes and dtypes in dependency order; rings for the known ones.

        An actor that opens its device to learn its shapes (``DeviceSource``)
        is *deferred* unless ``device_specs`` has what it reported; so is
        every actor downstream of a deferred one.
        """
        pfile, actors, classes = self.pfile, self.actors, self.classes
        problems: list[str] = []
        specs: dict[tuple[str, str], FrameSpec] = {}
        kinds: dict[tuple[str, str], str] = {}
        fields: dict[tuple[str, str], tuple[RecordField, ...]] = {}
        input_specs: dict[str, dict[str, FrameSpec]] = {name: {} for name in actors}
        deferred: list[str] = []
        for name in self.order:
            actor = actors[name]
            cls = classes[name]
            if any(up in deferred for up in self.edges[name]):
                deferred.append(name)
                continue
            device = _defers(cls, actor.options)
            try:
                described = dict(cls.describe_outputs(actor.options, input_specs[name]))
            except Exception as exc:  # noqa: BLE001 - bad options are the file's problem
                problems.append(f"{pfile.where(*self._key(name, 'options'))}: {name}: {exc}")
                continue
            if device and name not in device_specs:
                deferred.append(name)
                continue
            if name in device_specs:
                described.update(device_specs[name])
            declared = _declared_kinds(cls, actor, self._key(name), pfile, problems)
            for out, given in actor.outputs.items():
                if name in device_specs or declared.get(out) == "messages":
                    continue
                if not {"shape", "dtype"} & set(given) and {"kind", "max_message_bytes"} & set(
                    given
                ):
                    continue  # a kind alone: the class gives shape and dtype
                try:
                    described[out] = (
                        tuple(int(n) for n in given["shape"]),
                        dtype_text(given["dtype"]),
                    )
                except (KeyError, TypeError, ValueError) as exc:
                    problems.append(
                        f"{pfile.where('actors', self.index[name], 'outputs', out)}: give "
                        f"shape and dtype, e.g. {{shape: [512, 512], dtype: uint16}} ({exc})"
                    )
            for out in cls.output_names:
                if declared.get(out) == "messages":
                    cap = _max_message_bytes(cls, actor, out)
                    try:
                        specs[name, out] = (message_ring_shape(cap), "|u1")
                    except ValueError as exc:
                        where = pfile.where(*self._key(name, "outputs", out))
                        problems.append(f"{where}: {exc}")
                        continue
                    kinds[name, out] = "messages"
                elif out in described:
                    shape, dtype = described[out]
                    try:
                        text = dtype_text(dtype)
                    except TypeError as exc:
                        problems.append(f"{pfile.where(*self._key(name, 'outputs', out))}: {exc}")
                        continue
                    specs[name, out] = (tuple(int(n) for n in shape), text)
                    record = parse_dtype(text).names is not None
                    kind = declared.get(out) or ("records" if record else "frames")
                    if kind == "records" and not record:
                        problems.append(
                            f"{pfile.where(*self._key(name, 'outputs', out))}: output "
                            f"{name}.{out} is of kind records, but its dtype "
                            f"{parse_dtype(text)} has no fields; records take a structured "
                            "dtype, e.g. [[t, float64], [x, int32]]"
                        )
                    kinds[name, out] = kind
            # An optional class hook: ``describe_fields(options, inputs)`` names
            # the columns of records outputs, so recorders store them by name.
            describe_fields = getattr(cls, "describe_fields", None)
            if describe_fields is not None:
                try:
                    named_outputs = dict(describe_fields(actor.options, input_specs[name]))
                    for out, named in named_outputs.items():
                        fields[name, out] = tuple(
                            f if isinstance(f, RecordField) else RecordField(str(f)) for f in named
                        )
                except Exception as exc:  # noqa: BLE001 - bad options are the file's problem
                    problems.append(f"{pfile.where(*self._key(name, 'options'))}: {name}: {exc}")
            for link, key in zip(self.links, self.link_keys, strict=True):
                if link.source[0] != name:
                    continue
                spec = specs.get(link.source)
                dst, inp = link.target
                if spec is None:
                    problems.append(
                        f"{pfile.where(*key)}: the shape and dtype of {link.source[0]}."
                        f"{link.source[1]} are not known; give them under the actor's outputs: "
                        "{frames: {shape: [...], dtype: ...}}"
                    )
                    continue
                kind = kinds.get(link.source, "frames")
                takes = _input_kind(classes[dst], inp)
                if takes not in ("any", kind):
                    problems.append(
                        f"{pfile.where(*key)}: {link.link!r} links {kind} to an input that "
                        f"takes {takes} ({dst} is {actors[dst].class_path}); link an output "
                        f"of kind {takes}, or declare the input's kind in the class's "
                        "input_kinds"
                    )
                    continue
                wanted = _wanted_input(classes[dst], actors[dst].options, inp)
                if (
                    kind != "messages"
                    and wanted is not None
                    and (tuple(wanted[0]) != spec[0] or dtype_text(wanted[1]) != spec[1])
                ):
                    problems.append(
                        f"{pfile.where(*key)}: {link.link!r} links {_fmt(spec)} frames to an "
                        f"input that takes {_fmt((tuple(wanted[0]), dtype_text(wanted[1])))}"
                    )
                input_specs[dst][inp] = spec
        if problems:
            raise PipelineFileError(problems)

        rings: dict[tuple[str, str], dict[str, Any]] = {}
        for link in self.links:
            if link.source[0] in deferred:
                continue
            ring = rings.setdefault(link.source, {"slots": link.slots, "readers": []})
            ring["slots"] = max(ring["slots"], link.slots)
            ring["readers"].append((*link.target, link.policy, link.low_latency))
        # A class may check the links into it (a triggered recorder: latest
        # links, slots for its pre-trigger frames): ``check_links(options,
        # {input: (policy, slots)})`` returns its problems, one per input.
        for name in self.order:
            check = getattr(classes[name], "check_links", None)
            if check is None or name in deferred:
                continue
            into = {
                link.target[1]: (str(link.policy), rings[link.source]["slots"], key)
                for link, key in zip(self.links, self.link_keys, strict=True)
                if link.target[0] == name and link.source in rings
            }
            found = check(actors[name].options, {k: v[:2] for k, v in into.items()})
            for inp, problem in dict(found).items():
                where = (
                    pfile.where(*into[inp][2])
                    if inp in into
                    else pfile.where(*self._key(name, "options"))
                )
                problems.append(f"{where}: {problem}")
        if problems:
            raise PipelineFileError(problems)
        # An output no link reads still gets a ring: its actor runs the same,
        # and its frames go nowhere (no reader holds the writer back).
        for name in self.order:
            for out in classes[name].output_names:
                if (name, out) in specs and (name, out) not in rings:
                    rings[name, out] = {"slots": 16, "readers": []}
        ring_plans = tuple(
            RingPlan(
                name=f"{src}.{out}",
                writer=src,
                output=out,
                shape=specs[src, out][0],
                dtype=specs[src, out][1],
                slots=ring["slots"],
                readers=tuple(ring["readers"]),
                fields=fields.get((src, out), ()),
                kind=kinds.get((src, out), "frames"),
            )
            for (src, out), ring in rings.items()
        )
        self._check_shm(ring_plans)
        actor_plans = tuple(
            ActorPlan(
                name=name,
                cls=classes[name],
                config=actors[name],
                options=dict(actors[name].options),
                upstream=self.edges[name],
                opens_device=issubclass(classes[name], DeviceSource),
            )
            for name in self.order
        )
        # Recorders: every actor whose class records (``records = True``): the
        # HDF5Recorder, a TriggeredRecorder, a user's own.
        recorders = tuple(n for n in self.order if getattr(classes[n], "records", False))
        return Plan(pfile, actor_plans, ring_plans, recorders, tuple(deferred), self)


def _ring_bytes(ring: RingPlan) -> int:
    # As the supervisor makes them: room for 4 restarted readers.
    return FrameRing.bytes_needed(ring.shape, ring.dtype, ring.slots, len(ring.readers) + 4)


def _defers(cls: type[Actor], options: Mapping[str, Any]) -> bool:
    return issubclass(cls, DeviceSource) and cls.defers_outputs(options)


def _check_options(cls: type[Actor], options: Mapping[str, Any]) -> str | None:
    """What is wrong with ``options`` for ``cls(**options)``, or None."""
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return None
    params = list(signature.parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    named = {
        p.name: p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    unknown = sorted(set(options) - set(named))
    if unknown:
        return f"unknown option(s) {unknown}; its options are {sorted(named) or 'none'}"
    missing = sorted(
        n for n, p in named.items() if p.default is inspect.Parameter.empty and n not in options
    )
    if missing:
        return f"missing required option(s) {missing}"
    return None


def _wanted_input(cls: type[Actor], options: Mapping[str, Any], name: str) -> Any:
    describe = getattr(cls, "describe_inputs", None)
    if describe is None:
        return None
    return describe(options).get(name)


def _fmt(spec: FrameSpec) -> str:
    dtype = parse_dtype(spec[1])
    name = dtype.name if dtype.names is None else str(dtype.descr)
    return f"{'x'.join(str(n) for n in spec[0])} {name}"


_KINDS = ("frames", "records", "messages")
_OUTPUT_KEYS = {"shape", "dtype", "kind", "max_message_bytes"}


def _declared_kinds(
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


def _max_message_bytes(cls: type[Actor], actor: ActorConfig, out: str) -> Any:
    given = actor.outputs.get(out, {})
    if "max_message_bytes" in given:
        return given["max_message_bytes"]
    return getattr(cls, "max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES)


def _input_kind(cls: type[Actor], name: str) -> str:
    """The kind an input takes: the class's ``input_kinds``, else any (a class
    that takes any inputs) or ``frames``."""
    kinds = dict(getattr(cls, "input_kinds", {}) or {})
    if name in kinds:
        return str(kinds[name])
    return "any" if cls.input_names is None else "frames"


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
