"""The second stage of planning: shapes and dtypes along the links, and the rings.

Run once the classes and links are checked (``rigd.pipeline._plan``), and
again by ``Plan.resolve`` once the device sources reported their shapes.
Finds linked endpoints whose shapes or dtypes disagree, links whose kinds disagree
(``_plan_kinds``), options a class's
``describe_outputs`` refuses, links a class's ``check_links`` refuses, and
rings that /dev/shm cannot hold; each reported as one ``PipelineFileError``
naming file, line and key.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rigd.actors import Actor
from rigd.config import ActorConfig, PipelineFile, PipelineFileError
from rigd.pipeline._device import DeviceSource
from rigd.pipeline._plan_kinds import declared_kinds, input_kind, max_message_bytes
from rigd.pipeline._plan_records import ActorPlan, FrameSpec, Plan, RingPlan
from rigd.storage import (
    FrameRing,
    RecordField,
    dtype_text,
    message_ring_shape,
    parse_dtype,
    shm_free_bytes,
)

__all__ = ["ShapeStage"]


@dataclass(frozen=True)
class ShapeStage:
    """A checked pipeline before its shapes are known: what ``Plan.resolve`` needs.

    ``plan(device_specs)`` gives the shapes and dtypes in dependency order,
    the rings of the known ones, and the actors still deferred.
    """

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
        # The record: shorthand's recorder: its options are the recording: block.
        return ("recording", *rest[1:]) if rest[:1] == ("options",) else ("recording",)

    def check_options(self, names: Sequence[str]) -> None:
        """Check the option values of the actors ``names`` as ``plan`` does
        (their class's ``describe_outputs``, with no inputs), without the shapes.

        Raises:
            PipelineFileError: each refusal, with the file, line and key.
        """
        problems = []
        for name in names:
            try:
                self.classes[name].describe_outputs(self.actors[name].options, {})
            except Exception as exc:  # noqa: BLE001 - bad options are the file's problem
                problems.append(f"{self.pfile.where(*self._option_key(name, exc))}: {name}: {exc}")
        if problems:
            raise PipelineFileError(problems)

    def _option_key(self, name: str, exc: Exception) -> tuple[Any, ...]:
        """The key of the option an error names (``exc.option``, e.g. a recorder's
        ``OptionValueError``), else of the actor's options."""
        option = getattr(exc, "option", None)
        return self._key(name, "options", *([option] if isinstance(option, str) else []))

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
        # Actors whose outputs could not be described: those downstream have
        # inputs of unknown shape, and the problem upstream is the one to fix.
        failed: set[str] = set()
        for name in self.order:
            actor = actors[name]
            cls = classes[name]
            if any(up in failed for up in self.edges[name]):
                failed.add(name)
                continue
            if any(up in deferred for up in self.edges[name]):
                deferred.append(name)
                continue
            device = _defers(cls, actor.options)
            try:
                described = dict(cls.describe_outputs(actor.options, input_specs[name]))
            except Exception as exc:  # noqa: BLE001 - bad options are the file's problem
                problems.append(f"{pfile.where(*self._option_key(name, exc))}: {name}: {exc}")
                failed.add(name)
                continue
            if device and name not in device_specs:
                deferred.append(name)
                continue
            if name in device_specs:
                described.update(device_specs[name])
            declared = declared_kinds(cls, actor, self._key(name), pfile, problems)
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
                    cap = max_message_bytes(cls, actor, out)
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
                    if parse_dtype(text).hasobject:
                        problems.append(
                            f"{pfile.where(*self._key(name, 'outputs', out))}: output "
                            f"{name}.{out} has dtype {parse_dtype(text)}, which holds Python "
                            "objects; a ring holds plain numbers: give a numeric (or "
                            "structured numeric) dtype, or make the output kind: messages"
                        )
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
                takes = input_kind(classes[dst], inp)
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


def _wanted_input(cls: type[Actor], options: Mapping[str, Any], name: str) -> Any:
    describe = getattr(cls, "describe_inputs", None)
    if describe is None:
        return None
    return describe(options).get(name)


def _fmt(spec: FrameSpec) -> str:
    dtype = parse_dtype(spec[1])
    name = dtype.name if dtype.names is None else str(dtype.descr)
    return f"{'x'.join(str(n) for n in spec[0])} {name}"
