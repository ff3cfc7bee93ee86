"""Fixtures of the pipeline tests."""

from tests.pipeline.camera import simulator

__all__ = ["simulator"]
