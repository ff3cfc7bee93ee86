"""Pipelines: improv-style actors linked by rings, and the built-in lab actors.

Filled by the pipeline issue; the package exists so the layering of
DESIGN.md (service -> pipeline -> {actors, storage, gpu, config}) holds
from the start.
"""

__all__: list[str] = []
