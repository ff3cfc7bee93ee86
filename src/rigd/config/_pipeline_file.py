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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rigd._exceptions import PipelineFileError

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
        return _where(self.path, self.line(*key), key)


def _where(path: str, line: int | None, key: Sequence[Any]) -> str:
    dotted = ""
    for part in key:
        dotted += f"[{part}]" if isinstance(part, int) else (f".{part}" if dotted else str(part))
    place = f"{path}, line {line}" if line else path
    return f"{place}, {dotted}" if dotted else place


def _node_lines(node: yaml.Node, key: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(key, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            child = (*key, k.value)
            out[child] = k.start_mark.line + 1
            _node_lines(v, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _node_lines(item, (*key, i), out)


def _pydantic_problems(
    error: pydantic.ValidationError, path: str, lines: dict[tuple[Any, ...], int]
) -> Iterator[str]:
    for item in error.errors():
        loc = tuple(p for p in item["loc"] if p not in ("function-after", "function-before"))
        # Aliases: pydantic reports the field name; the file says "class".
        loc = tuple("class" if p == "class_path" else p for p in loc)
        line = None
        for end in range(len(loc), -1, -1):
            line = lines.get(loc[:end])
            if line is not None:
                break
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}; check its spelling (see the pipeline file format)"
        elif item["type"] == "missing":
            message = f"required key {loc[-1]!r} is missing"
        yield f"{_where(path, line, loc)}: {message}"


#: The most values a YAML file may hold once its aliases are expanded.
MAX_YAML_NODES = 100_000


def _check_size(
    root: yaml.Node, path: str, error: type[PipelineFileError], *, allow_aliases: bool
) -> None:
    """Refuse a node graph that expands to more than ``MAX_YAML_NODES`` values.

    The composed graph shares aliased nodes, so it is small; what it expands
    to is counted without expanding it (each node's size once, memoised).
    """
    sizes: dict[int, int] = {}
    seen_anchor = False
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if not children_done and id(node) in sizes:
            seen_anchor = True  # a node reached twice: an alias
            continue
        if isinstance(node, yaml.ScalarNode):
            sizes[id(node)] = 1
            continue
        children: list[yaml.Node] = (
            [n for pair in node.value for n in pair]
            if isinstance(node, yaml.MappingNode)
            else list(node.value)
        )
        if children_done:
            total = 1 + sum(sizes.get(id(c), 0) for c in children)
            sizes[id(node)] = min(total, MAX_YAML_NODES + 1)
            continue
        sizes.setdefault(id(node), 0)  # visiting: a cycle counts as nothing more
        stack.append((node, True))
        stack.extend((c, False) for c in children)
    if seen_anchor and not allow_aliases:
        raise error(
            [
                f"{path}: uses YAML anchors and aliases (& and *), which a pipeline sent over "
                "HTTP may not; write each value out"
            ]
        )
    if sizes.get(id(root), 0) > MAX_YAML_NODES:
        raise error(
            [
                f"{path}: expands to more than {MAX_YAML_NODES} values (its aliases repeat "
                "too much); a pipeline file is a few hundred"
            ]
        )


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
        text = Path(source).read_text()
    from rigd.config._improv import improv_pipeline_text

    converted = improv_pipeline_text(path, text, allow_aliases=allow_aliases)
    if converted is not None:
        # improv's format: the file rigd runs is the conversion (what
        # `rigd convert` prints); later errors name its lines.
        text = converted
        path = f"{path} (as converted from improv's format; see rigd convert {path})"
    config, lines = validate_yaml(
        PipelineConfig,
        path,
        text,
        PipelineFileError,
        "a pipeline file is a mapping with an 'actors' list",
        allow_aliases=allow_aliases,
    )
    return PipelineFile(config, text, path, lines)


def validate_yaml(
    model: type[_M],
    path: str,
    text: str,
    error: type[PipelineFileError],
    shape: str,
    *,
    allow_aliases: bool = True,
) -> tuple[_M, dict[tuple[Any, ...], int]]:
    """Parse ``text`` as YAML and validate it as ``model``.

    Returns:
        The model, and the line of each key.

    The text is read in bounded memory and time: it may hold at most
    ``MAX_YAML_NODES`` values once its aliases are expanded (an alias bomb of
    a few hundred bytes is refused before it is built), and with
    ``allow_aliases=False`` (text that came over HTTP) no anchor or alias at all.

    Raises:
        error: the YAML or its keys are wrong, one problem per line, each
        naming ``path``, the line and the key.
    """
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)  # its reader refuses control characters at once
        root = loader.get_single_node()
        if root is not None:
            _check_size(root, path, error, allow_aliases=allow_aliases)
            data = loader.construct_document(root)
        else:
            data = None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f", line {mark.line + 1}" if mark is not None else ""
        raise error([f"{path}{line}: not valid YAML: {exc}"]) from None
    except RecursionError:
        raise error(
            [f"{path}: nested too deeply to read; a pipeline file is a few levels deep"]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict) or root is None:
        raise error([f"{path}: {shape}"])
    lines: dict[tuple[Any, ...], int] = {}
    _node_lines(root, (), lines)
    try:
        config = model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise error(list(_pydantic_problems(exc, path, lines))) from None
    return config, lines
