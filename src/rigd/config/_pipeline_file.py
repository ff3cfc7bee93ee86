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
    recording: {directory: rigd-data, when_behind: drop}  # the record: recorder's options
    run:
      metadata: {experiment: demo}

This module only checks the file's own shape (keys, types, link syntax). Its
classes are plain frozen dataclasses: pydantic validates a file into them
(``rigd.config._yaml.validate_data``, imported when a file is read), so a
loaded file travels (pickled, to a Ray task of ``rigd reprocess``) to a
process that never imports pydantic (about 65 ms of a Ray worker's start).
The pipeline package checks what needs the actor classes (imports, endpoints,
cycles, shapes) and reports through ``PipelineFileError`` too, with the
line of the key at fault (``PipelineFile.line``).
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from rigd._exceptions import PipelineFileError
from rigd.config._checks import NO_BOOL, After, Before, Limits
from rigd.config._format import is_improv
from rigd.config._record_shorthand import shorthand_problems
from rigd.config._wording import MAX_NAME
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
Name = Annotated[str, Limits(pattern=rf"^{_NAME}$", max_length=MAX_NAME)]
_Cpu = Annotated[int, Limits(ge=0), NO_BOOL]
#: What pydantic applies to each of these classes when it validates a file
#: (``rigd.config._yaml.validate_data``): unknown keys are errors. Number
#: fields end in ``NO_BOOL``: lax mode read ``slots: true`` as 1; they take
#: numbers, and text pydantic reads as one (``1e3``, which PyYAML leaves as
#: text); an int field takes no fraction.
_STRICT = {"extra": "forbid"}
#: The YAML key of a field whose Python name differs (``class`` is a keyword).
ALIASES = {"class_path": "class"}


def _some_cpus(value: list[int] | None) -> list[int] | None:
    if value is None:
        return value
    if not value:
        raise ValueError(
            "an empty list pins the actor nowhere; name CPUs (e.g. [2]) or leave cpus "
            "out to let the kernel choose"
        )
    twice = sorted({cpu for cpu in value if value.count(cpu) > 1})
    if twice:
        cpus = f"CPU {twice[0]} is" if len(twice) == 1 else f"CPUs {', '.join(map(str, twice))} are"
        raise ValueError(f"{cpus} given twice in {value}; name each CPU once")
    return value


def _link_syntax(value: str) -> str:
    if not _LINK.match(value):
        raise ValueError(f"a link is written 'actor.output -> actor.input', got {value!r}")
    return value


def _local_directory(value: str) -> str:
    if not value.strip() or "\0" in value:
        raise ValueError("give a directory path, e.g. rigd-data or /data/rig1")
    if value.startswith("~"):
        raise ValueError("give the path without ~: rigd does not expand it; e.g. /home/you/data")
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", value):
        raise ValueError(
            f"{value!r} is a URL; give a local directory path (e.g. /data/rig1): "
            "runs are recorded to a disk of this machine"
        )
    return value


def _short_links(value: Any) -> Any:
    if isinstance(value, list):
        return [{"link": item} if isinstance(item, str) else item for item in value]
    return value


def _endpoints(value: list[str]) -> list[str]:
    for item in value:
        if not _ENDPOINT.match(item):
            raise ValueError(f"record takes 'actor.output' entries, got {item!r}")
    return value


def _class_key(value: Any) -> Any:
    """An actor's ``class`` key, as the field ``class_path`` (a Python keyword)."""
    if isinstance(value, dict) and "class" in value:
        if "class_path" in value:
            raise ValueError("give the class once, as class (class_path is the same key)")
        value = {("class_path" if k == "class" else k): v for k, v in value.items()}
    return value


@dataclass(frozen=True, kw_only=True)
class ActorConfig:
    """One actor: its name, its class (an import path), options and resources."""

    __pydantic_config__ = _STRICT

    name: Name
    class_path: Annotated[str, Limits(min_length=1)]  # the file's key: ``class``
    options: dict[str, Any] = field(default_factory=dict)
    num_cpus: Annotated[float, Limits(ge=0, allow_inf_nan=False), NO_BOOL] | None = None
    num_gpus: Annotated[float, Limits(ge=0, allow_inf_nan=False), NO_BOOL] | None = None
    max_restarts: Annotated[int, Limits(ge=-1), NO_BOOL] = 0
    #: Pin the actor's process to these CPUs (Linux CPU affinity), so that
    #: the scheduler never queues it behind another actor on a busy core.
    cpus: Annotated[list[_Cpu] | None, After(_some_cpus)] = None
    #: Shape and dtype per output, for classes that cannot say themselves.
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The Ray node to run on, by a custom resource the node has (``ray start
    #: --resources '{"camera_pc": 1}'``); a cluster run (``ClusterPipeline``)
    #: places the actor there. On one machine every node is this one.
    node: Name | None = None


@dataclass(frozen=True, kw_only=True)
class LinkConfig:
    """A ring from one actor's output to another's input."""

    __pydantic_config__ = _STRICT

    link: Annotated[str, After(_link_syntax)]
    slots: Annotated[int, Limits(ge=2, le=4096), NO_BOOL] = 16
    policy: Literal["lossless", "latest"] = "lossless"
    low_latency: bool = False

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


@dataclass(frozen=True, kw_only=True)
class RecordingConfig:
    """Options of the recorder the ``record:`` shorthand adds."""

    __pydantic_config__ = _STRICT

    directory: Annotated[str, After(_local_directory)] = "rigd-data"
    template: str = "{date}_{time}_{pipeline}_{run_id}.h5"
    compression: Literal["lz4", "zstd", "bitshuffle-lz4"] | None = None
    flush_interval: Annotated[float, Limits(gt=0, allow_inf_nan=False), NO_BOOL] = 0.5
    fsync_interval: Annotated[float, Limits(gt=0, allow_inf_nan=False), NO_BOOL] = 1.0
    latency_trace: bool = True
    #: What a lossless input does when the disk falls behind: ``wait`` holds
    #: the source back (a file played back), ``drop`` drops the oldest frames,
    #: counted in the ledger (a live camera). ``HDF5Recorder``'s option.
    when_behind: Literal["wait", "drop"] = "wait"
    slots: Annotated[int, Limits(ge=2, le=4096), NO_BOOL] = 32


@dataclass(frozen=True, kw_only=True)
class RealtimeConfig:
    """Machine settings held while the pipeline runs."""

    __pydantic_config__ = _STRICT

    #: Bound the CPUs' wake-up latency (Linux PM QoS, /dev/cpu_dma_latency);
    #: 0 keeps idle CPUs polling. None leaves the machine as it is.
    cpu_latency_us: Annotated[int, Limits(ge=0), NO_BOOL] | None = None


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Defaults for each run: metadata stored in the run file."""

    __pydantic_config__ = _STRICT

    metadata: dict[str, Any] = field(default_factory=dict)
    #: The longest pause (seconds); a longer one ends on its own (the run resumes).
    max_pause_s: Annotated[float, Limits(gt=0, allow_inf_nan=False), NO_BOOL] = 600.0
    #: How long (seconds) each actor's start calls (open its device, attach,
    #: ``setup``) may take before the start fails naming the actors that did
    #: not answer.
    setup_timeout_s: Annotated[float, Limits(gt=0, allow_inf_nan=False), NO_BOOL] = 60.0


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """A whole pipeline file."""

    __pydantic_config__ = _STRICT

    name: Name = "pipeline"
    actors: Annotated[list[Annotated[ActorConfig, Before(_class_key)]], Limits(min_length=1)]
    links: Annotated[list[LinkConfig], Before(_short_links)] = field(default_factory=list)
    record: Annotated[list[str], After(_endpoints)] = field(default_factory=list)
    recording: RecordingConfig = field(default_factory=RecordingConfig)
    run: RunConfig = field(default_factory=RunConfig)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)

    def recorder_options(self, own: dict[str, Any] | None = None) -> dict[str, Any]:
        """The options of the ``record:`` shorthand's recorder, from ``recording:``
        (its ``slots`` are the links'): all of them for the recorder the shorthand
        adds (``own`` None); for the file's actor named ``recorder``, its ``own``
        options and the ``recording:`` keys given that they do not give
        (loading refuses one given in both, ``rigd.config._record_shorthand``)."""
        if own is None:
            options = dataclasses.asdict(self.recording)
        else:
            options = {**_data(self.recording), **own}
        options.pop("slots", None)
        return options

    def to_data(self) -> dict[str, Any]:
        """The config as YAML has it: the file's keys (``class``), values left at
        their defaults omitted; what ``from_data`` and ``load_pipeline`` read back."""
        data: dict[str, Any] = _data(self)
        return data

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> PipelineConfig:
        """A config made from ``data`` without validating it: for one that came from
        a validated config (``to_data``) through rigd's own rewrite (``rigd
        reprocess``'s, in a Ray task that never imports pydantic). A file from
        anyone else goes through ``load_pipeline``.

        Raises:
            TypeError: a key no field has (the rewrite's bug, not the user's).
        """
        data = dict(data)
        actors = [ActorConfig(**_class_key(dict(a))) for a in data.pop("actors")]
        links = [LinkConfig(**link) for link in _short_links(list(data.pop("links", [])))]
        kinds: dict[str, Any] = {
            "recording": RecordingConfig,
            "run": RunConfig,
            "realtime": RealtimeConfig,
        }
        parts = {key: kind(**data.pop(key)) for key, kind in kinds.items() if key in data}
        return cls(actors=actors, links=links, **parts, **data)


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
    config = validate_data(PipelineConfig, path, data, lines, PipelineFileError, ALIASES)
    pfile = PipelineFile(config, text, path, lines)
    problems = shorthand_problems(data, pfile)
    if problems:
        raise PipelineFileError(problems)
    return pfile


def _data(config: Any) -> Any:
    """``config`` (or any part of it) as YAML has it (``PipelineConfig.to_data``)."""
    if isinstance(config, list | tuple):
        return [_data(item) for item in config]
    if isinstance(config, dict):
        return {k: _data(v) for k, v in config.items()}
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        return config
    out: dict[str, Any] = {}
    for item in dataclasses.fields(config):
        value = getattr(config, item.name)
        if value != _default(item):
            out[ALIASES.get(item.name, item.name)] = _data(value)
    return out


def _default(item: dataclasses.Field[Any]) -> Any:
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    return item.default  # MISSING for a required field: never equal to a value
