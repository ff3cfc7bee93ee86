"""Pipelines for the daemon: files found by name in the allowed directories
(``_pipeline_names``),
checked into a plan, described as ``GET /v1/pipeline`` reports them, and
their triggered recorders triggered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rigd.actors import Actor, get
from rigd.config import PipelineFileError, ServiceConfig, load_pipeline
from rigd.pipeline import Pipeline, Plan, plan_pipeline
from rigd.service._pipeline_names import find_pipeline_file
from rigd.service._records import TransitionError
from rigd.storage import check_metadata

__all__ = ["check_pipeline", "find_pipeline_file", "pipeline_info", "trigger_recorders"]


def pipeline_info(plan: Plan | None, source: str | None) -> dict[str, Any]:
    """The loaded pipeline: name, where it came from, actors, links and its text."""
    if plan is None:
        return {"name": None, "source": None, "actors": [], "links": []}
    return {
        "name": plan.name,
        "source": source,
        "actors": [
            {"name": a.name, "class": a.config.class_path, "source": a.is_source}
            for a in plan.actors
        ],
        "links": [
            {
                "ring": r.name,
                "shape": list(r.shape),
                "dtype": r.dtype,
                "slots": r.slots,
                "readers": [f"{a}.{i}" for a, i, _, _ in r.readers],
            }
            for r in plan.rings
        ],
        "text": plan.file.text,
    }


def check_pipeline(
    config: ServiceConfig,
    confine: Callable[[type[Actor], dict[str, Any]], dict[str, Any]],
    *,
    text: str | None = None,
    name: str | None = None,
) -> tuple[Plan, str]:
    """A pipeline (its YAML text, or a file by name) checked into a plan, and where it
    came from (the file's path, or ``request body``).

    Raises:
        ValueError: both or neither of ``text`` and ``name``.
        NotFoundError: ``name`` names no allowed file.
        PipelineFileError: the pipeline is wrong (file, line and key of each problem).
    """
    if (text is None) == (name is None):
        raise ValueError("give the pipeline's text or the name of a pipeline file, not both")
    if name is not None:
        path = find_pipeline_file(config, name)
        pfile = load_pipeline(path)
        source = str(path)
    else:
        assert text is not None
        pfile = load_pipeline("<request body>", text=text, allow_aliases=False)
        source = "request body"
    try:
        check_metadata(pfile.config.run.metadata)
    except ValueError as exc:
        raise PipelineFileError([f"{pfile.where('run', 'metadata')}: {exc}"]) from None
    plan = plan_pipeline(pfile, allowed_modules=config.allowed_modules, confine=confine)
    return plan, source


def trigger_recorders(pipeline: Pipeline, label: str) -> dict[str, bool]:
    """Trigger every triggered recorder of ``pipeline`` (``TriggeredRecorder.trigger``);
    per recorder, whether it took it (it is armed).

    Raises:
        TransitionError: the pipeline has no triggered recorder.
    """
    names = [
        a.name
        for a in pipeline.plan.actors
        if getattr(a.cls, "records", False) and callable(getattr(a.cls, "trigger", None))
    ]
    if not names:
        raise TransitionError(
            f"pipeline {pipeline.plan.name!r} has no triggered recorder; add a "
            "rigd.pipeline.TriggeredRecorder to take triggers"
        )
    refs = {name: pipeline.handle(name).trigger.remote(label) for name in names}
    return {name: bool(get(ref, timeout=10)) for name, ref in refs.items()}
