"""Pipeline files: YAML, validated with pydantic, errors that name file, line and key.

A pipeline file::

    name: demo
    actors:
      - name: camera
        class: rigd.pipeline.SimulatedCamera
        options: {shape: [512, 512], dtype: uint16, fps: 200, n_frames: 2000}
        max_restarts: 0            # and num_cpus, num_gpus, cpus: [2] (pinning)
      - name: recorder
        class: rigd.pipeline.HDF5Recorder
    links:
      - camera.frames -> recorder.camera                 # lossless, 16 slots
      - {link: camera.frames -> viewer.frames, policy: latest, slots: 4}
    record: [stats.stats]          # shorthand: record these outputs too
    realtime: {cpu_latency_us: 0}  # optional: hold CPU wake-ups fast while running
    recording: {directory: rigd-data, compression: null}
    run:
      metadata: {experiment: demo}

This module only checks the file's own shape (keys, types, link syntax). The
pipeline package checks what needs the actor classes (imports, endpoints,
cycles, shapes) and reports through ``PipelineFileError`` too, with the
line of the key at fault (``PipelineFile.line``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rigd._exceptions import PipelineFileError
from rigd.config._format import is_improv
from rigd.config._yaml import parse_yaml, read_text_file, validate_data, where

__all__ = [
    "ActorConfig",
    "LinkConfig",
    "PipelineConfig",
    "PipelineFile",
    "PipelineFileError",
    "RealtimeConfig",
    "RecordingConfig",
    "RunConfig",
    "load_pipeline",
]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ENDPOINT = re.compile(rf"^\s*({_NAME})\.({_NAME})\s*$")
_LINK = re.compile(rf"^\s*({_NAME})\.({_NAME})\s*->\s*({_NAME})\.({_NAME})\s*$")
# At most 64 characters: names go into ring and segment names (255 bytes at most).
Name = Annotated[str, Field(pattern=rf"^{_NAME}$", max_length=64)]
_M = TypeVar("_M", bound="BaseModel")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ActorConfig(_Model):
    """One actor: its name, its class (an import path), options and resources."""

    name: Name
    class_path: str = Field(alias="class", min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    num_cpus: float | None = Field(default=None, ge=0)
    num_gpus: float | None = Field(default=None, ge=0)
    max_restarts: int = Field(default=0, ge=-1)
    #: Pin the actor's process to these CPUs (Linux CPU affinity), so that
    #: the scheduler never queues it behind another actor on a busy core.
    cpus: list[Annotated[int, Field(ge=0)]] | None = None
    #: Shape and dtype per output, for classes that cannot say themselves.
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: The Ray node to run on, by a custom resource the node has (``ray start
    #: --resources '{"camera_pc": 1}'``); a cluster run (``ClusterPipeline``)
    #: places the actor there. On one machine every node is this one.
    node: Name | None = None

    @field_validator("cpus")
    @classmethod
    def _some_cpus(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and not value:
            raise ValueError(
                "an empty list pins the actor nowhere; name CPUs (e.g. [2]) or leave cpus "
                "out to let the kernel choose"
            )
        return value


class LinkConfig(_Model):
    """A ring from one actor's output to another's input."""

    link: str
    slots: int = Field(default=16, ge=2, le=4096)
    policy: Literal["lossless", "latest"] = "lossless"
    low_latency: bool = False

    @field_validator("link")
    @classmethod
    def _syntax(cls, value: str) -> str:
        if not _LINK.match(value):
            raise ValueError(f"a link is written 'actor.output -> actor.input', got {value!r}")
        return value

    @property
    def source(self) -> tuple[str, str]:
        match = _LINK.match(self.link)
        assert match is not None
        return match.group(1), match.group(2)

    @property
    def target(self) -> tuple[str, str]:
        match = _LINK.match(self.link)
        assert match is not None
        return match.group(3), match.group(4)


class RecordingConfig(_Model):
    """Options of the recorder the ``record:`` shorthand adds."""

    directory: str = "rigd-data"
    template: str = "{date}_{time}_{pipeline}_{run_id}.h5"
    compression: Literal["lz4", "zstd", "bitshuffle-lz4"] | None = None
    flush_interval: float = Field(default=0.5, gt=0)
    fsync_interval: float = Field(default=1.0, gt=0)
    latency_trace: bool = True
    slots: int = Field(default=32, ge=2, le=4096)

    @field_validator("directory")
    @classmethod
    def _local_directory(cls, value: str) -> str:
        if not value.strip() or "\0" in value:
            raise ValueError("give a directory path, e.g. rigd-data or /data/rig1")
        if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
            raise ValueError(
                f"{value!r} is a URL; give a local directory path (e.g. /data/rig1): "
                "runs are recorded to a disk of this machine"
            )
        return value


class RealtimeConfig(_Model):
    """Machine settings held while the pipeline runs."""

    #: Bound the CPUs' wake-up latency (Linux PM QoS, /dev/cpu_dma_latency);
    #: 0 keeps idle CPUs polling. None leaves the machine as it is.
    cpu_latency_us: int | None = Field(default=None, ge=0)


class RunConfig(_Model):
    """Defaults for each run: metadata stored in the run file."""

    metadata: dict[str, Any] = Field(default_factory=dict)
    #: The longest pause (seconds); a longer one ends on its own (the run resumes).
    max_pause_s: float = Field(default=600.0, gt=0)
    #: How long (seconds) each actor's start calls (open its device, attach,
    #: ``setup``) may take before the start fails naming the actors that did
    #: not answer.
    setup_timeout_s: float = Field(default=60.0, gt=0)


class PipelineConfig(_Model):
    """A whole pipeline file."""

    name: Name = "pipeline"
    actors: list[ActorConfig] = Field(min_length=1)
    links: list[LinkConfig] = Field(default_factory=list)
    record: list[str] = Field(default_factory=list)
    recording: RecordingConfig = Field(default_factory=RecordingConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    realtime: RealtimeConfig = Field(default_factory=RealtimeConfig)

    @field_validator("links", mode="before")
    @classmethod
    def _short_links(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"link": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("record")
    @classmethod
    def _endpoints(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _ENDPOINT.match(item):
                raise ValueError(f"record takes 'actor.output' entries, got {item!r}")
        return value


@dataclass(frozen=True)
class PipelineFile:
    """A validated pipeline file: the model, its text, and where each key is."""

    config: PipelineConfig
    text: str
    path: str
    _lines: dict[tuple[Any, ...], int]

    def line(self, *key: Any) -> int | None:
        """The 1-based line of ``key`` (e.g. ``("links", 2)``), or of its nearest parent."""
        for end in range(len(key), -1, -1):
            found = self._lines.get(tuple(key[:end]))
            if found is not None:
                return found
        return None

    def where(self, *key: Any) -> str:
        """``file, line N, key a.b[2]``: the start of an error message."""
        return where(self.path, self.line(*key), key)


def load_pipeline(
    source: str | Path, *, text: str | None = None, allow_aliases: bool = True
) -> PipelineFile:
    """Read and validate a pipeline file (or ``text``, named ``source`` in errors).

    improv's config files (``actors`` as a mapping, ``connections``) are read
    too, through their conversion (``rigd.config._improv``).

    Raises:
        FileNotFoundError: no such file.
        PipelineFileError: the YAML or its keys are wrong; the message names
            the file, the line and the key of each problem.
    """
    path = str(source)
    if text is None:
        text = read_text_file(Path(source), "pipeline file")
    shape = "a pipeline file is a mapping with an 'actors' list"
    data, lines = parse_yaml(path, text, PipelineFileError, shape, allow_aliases=allow_aliases)
    if is_improv(data):
        # improv's format (its actors a mapping): the file rigd runs is the
        # conversion (what `rigd convert` prints); later errors name its lines.
        # Imported here: most pipeline files are rigd's, and a Ray worker that
        # replays one need not build improv's models.
        from rigd.config._improv import improv_pipeline_text

        converted = improv_pipeline_text(
            path, text, allow_aliases=allow_aliases, parsed=(data, lines)
        )
        assert converted is not None
        text = converted
        path = f"{path} (as converted from improv's format; see rigd convert {path})"
        data, lines = parse_yaml(path, text, PipelineFileError, shape, allow_aliases=allow_aliases)
    config = validate_data(PipelineConfig, path, data, lines, PipelineFileError)
    return PipelineFile(config, text, path, lines)
