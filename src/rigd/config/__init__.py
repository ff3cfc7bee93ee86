"""Typed configuration: pipeline files and the service config (YAML, validated), and the
bundled pipelines."""

from pathlib import Path

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
