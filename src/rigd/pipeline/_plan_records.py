"""A pipeline's plan: the records ``plan_pipeline`` returns and the supervisor runs.

``Plan`` holds the actors in dependency order (``ActorPlan``) and the rings
between them (``RingPlan``), with their shapes and dtypes; ``Plan.resolve``
completes a plan whose device sources had still to report their shapes
(``rigd.pipeline._plan_shapes`` does the work).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rigd.actors import Actor
from rigd.config import ActorConfig, PipelineFile
from rigd.storage import RecordField

__all__ = ["ActorPlan", "FrameSpec", "Plan", "RingPlan"]

#: An endpoint's frames: (shape, numpy dtype string).
FrameSpec = tuple[tuple[int, ...], str]


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

    @property
    def recorder_directory(self) -> str | None:
        """Where the run files go: the first recorder's ``directory`` option (or
        its class's default), as written (relative paths are relative to the
        current directory, or to a daemon's data directory); None when nothing
        records."""
        by_name = {a.name: a for a in self.actors}
        for name in self.recorders:
            actor = by_name[name]
            directory = actor.options.get("directory")
            if directory is None:
                with contextlib.suppress(TypeError, ValueError):
                    parameter = inspect.signature(actor.cls).parameters.get("directory")
                    directory = None if parameter is None else parameter.default
            if isinstance(directory, str) and directory:
                return directory
        return None

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
