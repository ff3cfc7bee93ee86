"""Typed configuration models and YAML loading. Filled by the pipeline issue."""

__all__: list[str] = []
