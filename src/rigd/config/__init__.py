"""Typed configuration: pipeline files and the service config (YAML, validated), and the
bundled pipelines.

Each name's module is imported on first use (PEP 562, as ``rigd.pipeline``): a
process that reads a pipeline file (every Ray task of ``rigd reprocess``) does
not import the daemon's service config, nor improv's reader unless the file is
improv's.
"""

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rigd.config._improv import improv_pipeline_text
    from rigd.config._pipeline_file import (
        ActorConfig,
        LinkConfig,
        PipelineConfig,
        PipelineFile,
        PipelineFileError,
        RealtimeConfig,
        RecordingConfig,
        RunConfig,
        load_pipeline,
    )
    from rigd.config._service_file import ServiceConfig, ServiceConfigError, load_service_config

#: The pipelines that ship with rigd (``demo.yaml``: what ``rigd run`` runs).
BUNDLED_PIPELINES = Path(__file__).parent / "pipelines"

__all__ = [  # noqa: RUF022 - plain sorted order, which tests/test_exports.py checks
    "ActorConfig",
    "BUNDLED_PIPELINES",
    "LinkConfig",
    "PipelineConfig",
    "PipelineFile",
    "PipelineFileError",
    "RealtimeConfig",
    "RecordingConfig",
    "RunConfig",
    "ServiceConfig",
    "ServiceConfigError",
    "improv_pipeline_text",
    "load_pipeline",
    "load_service_config",
]

#: Each name: its module, imported on first use.
_LAZY = {
    "ActorConfig": "rigd.config._pipeline_file",
    "LinkConfig": "rigd.config._pipeline_file",
    "PipelineConfig": "rigd.config._pipeline_file",
    "PipelineFile": "rigd.config._pipeline_file",
    "PipelineFileError": "rigd._exceptions",
    "RealtimeConfig": "rigd.config._pipeline_file",
    "RecordingConfig": "rigd.config._pipeline_file",
    "RunConfig": "rigd.config._pipeline_file",
    "ServiceConfig": "rigd.config._service_file",
    "ServiceConfigError": "rigd._exceptions",
    "improv_pipeline_text": "rigd.config._improv",
    "load_pipeline": "rigd.config._pipeline_file",
    "load_service_config": "rigd.config._service_file",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rigd.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
