"""A pipeline as ``rigd load`` and ``rigd run`` name it: a file here, else a name.

Both commands take the same argument, resolved the same way: a YAML file on
this machine when there is one (``local_pipeline_file``: a path, relative to
the current directory or absolute), else the name of a pipeline file
(``demo`` or ``demo.yaml``) in the pipeline directories: the service
config's ``pipeline_dirs``, then rigd's bundled pipelines when
``bundled_pipelines`` (``find_pipeline_file``). ``rigd load`` sends a file's
text, or the name for the daemon to look up in its config's directories;
``rigd run`` looks the name up itself, in a default service config's
directories (the bundled pipelines: ``rigd run demo``).

Only the standard library and rigd's errors: the REST client uses it too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rigd._exceptions import NotFoundError
from rigd.config import BUNDLED_PIPELINES

if TYPE_CHECKING:
    from rigd.config import ServiceConfig

__all__ = [
    "bundled_pipeline_names",
    "find_pipeline_file",
    "local_pipeline_file",
    "pipeline_directories",
    "resolve_pipeline",
    "run_pipeline_file",
]


def local_pipeline_file(pipeline: str | os.PathLike[str]) -> Path | None:
    """``pipeline`` as a file on this machine, or None when no such file is there."""
    path = Path(pipeline)
    return path if path.is_file() else None


def pipeline_directories(config: ServiceConfig) -> list[Path]:
    """Where names are looked up, in order: ``pipeline_dirs``, then the bundled
    pipelines' directory when ``bundled_pipelines``."""
    directories = list(config.pipeline_dirs)
    if config.bundled_pipelines:
        directories.append(BUNDLED_PIPELINES)
    return directories


def bundled_pipeline_names() -> list[str]:
    """The names of rigd's bundled pipelines (``["demo"]``), sorted."""
    return sorted(p.stem for p in BUNDLED_PIPELINES.glob("*.yaml"))


def find_pipeline_file(config: ServiceConfig, name: str) -> Path:
    """The pipeline file ``name`` (``demo`` or ``demo.yaml``) in an allowed directory
    (``pipeline_directories``).

    Raises:
        NotFoundError: no such file in any of them, or ``name`` is a path.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise NotFoundError(
            f"a pipeline is named by its file name in a pipeline directory, got {name!r}; "
            "send the pipeline's text instead to load one from elsewhere"
        )
    candidates = [name] if name.endswith((".yaml", ".yml")) else [f"{name}.yaml", name]
    directories = pipeline_directories(config)
    for directory in directories:
        for candidate in candidates:
            path = directory / candidate
            if path.is_file():
                return path
    raise NotFoundError(
        f"no pipeline file {name!r} in {', '.join(str(d) for d in directories)}; "
        "add its directory to pipeline_dirs in the service config, or send its text"
    )


def resolve_pipeline(pipeline: str, config: ServiceConfig) -> Path:
    """The pipeline file ``pipeline`` names: a file here (``local_pipeline_file``),
    else a name in ``config``'s directories (``find_pipeline_file``), as ``rigd
    load`` resolves it.

    Raises:
        NotFoundError: neither; the message names the directories searched, the
            bundled pipelines' names, and what to give instead.
    """
    local = local_pipeline_file(pipeline)
    if local is not None:
        return local
    if Path(pipeline).is_dir():
        inside = sorted(p.name for p in Path(pipeline).glob("*.y*ml"))
        raise NotFoundError(
            f"{pipeline} is a directory, not a pipeline file; give one of its YAML files"
            f"{' (' + ', '.join(inside[:5]) + ')' if inside else ''}, or the name of a bundled "
            f"pipeline ({', '.join(bundled_pipeline_names()) or 'none'})"
        )
    try:
        return find_pipeline_file(config, pipeline)
    except NotFoundError:
        pass
    where = [str(d) for d in config.pipeline_dirs]
    bundled = ", ".join(bundled_pipeline_names()) or "none"
    if config.bundled_pipelines:
        where.append(f"rigd's bundled pipelines ({bundled})")
    raise NotFoundError(
        f"no pipeline file {pipeline} here, nor a pipeline named {pipeline!r} in "
        f"{' or '.join(where) or 'any pipeline directory'}; give the path of a pipeline "
        f"YAML file, or the name of a bundled one ({bundled})"
    )


def run_pipeline_file(pipeline: str) -> Path:
    """The file ``rigd run PIPELINE`` runs: ``resolve_pipeline`` with a default
    service config's directories (rigd's bundled pipelines), as a daemon started
    without a config resolves ``rigd load PIPELINE``.

    Raises:
        NotFoundError: no such file here, nor such a bundled pipeline.
    """
    from rigd.config import ServiceConfig  # pydantic: not for the client's imports

    return resolve_pipeline(pipeline, ServiceConfig())
