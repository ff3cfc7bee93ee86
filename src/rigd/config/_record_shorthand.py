"""The ``record:`` shorthand's keys, checked together when a pipeline file loads.

``record: [actor.output, ...]`` records those outputs into the shorthand's
recorder: an ``HDF5Recorder`` it adds with the options under ``recording:``,
or the file's actor named ``recorder`` (``rigd.pipeline._plan``), which
takes the ``recording:`` keys its own ``options`` do not give. A key that
would do nothing is refused, not ignored: ``recording:`` with no ``record:``
list, ``record: []``, and a ``recording:`` key that the actor named
``recorder`` gives in its options too (one of the two would be lost).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rigd.config._pipeline_file import PipelineFile

__all__ = ["shorthand_problems"]


def shorthand_problems(data: dict[str, Any], pfile: PipelineFile) -> list[str]:
    """The problems of ``data``'s ``record:`` and ``recording:`` (a validated
    pipeline file's mapping, as YAML has it), each naming ``pfile``'s file,
    line and key; empty when there are none."""
    place = pfile.where
    if "record" in data and not data["record"]:
        return [
            f"{place('record')}: record: lists outputs to record; remove it or name some "
            "(record: [camera.frames])"
        ]
    recording = data.get("recording")
    if recording is None:
        return []
    actors = data.get("actors") or []
    named = [i for i, actor in enumerate(actors) if actor.get("name") == "recorder"]
    if not data.get("record"):
        fix = "add record: [...] or remove recording:"
        if named:
            fix += " (the actor named recorder takes its own options under options:)"
        return [
            f"{place('recording')}: recording: sets the record: shorthand's recorder, but "
            f"there is no record: list; {fix}"
        ]
    problems = []
    for i in named[:1]:  # a second actor named recorder is planning's problem
        options = actors[i].get("options") or {}
        for key in recording:
            if key in options:
                problems.append(
                    f"{place('recording', key)}: {key} is given twice for the record: "
                    f"shorthand's recorder, under recording: (line "
                    f"{pfile.line('recording', key)}) and in the options of the actor named "
                    f"recorder (line {pfile.line('actors', i, 'options', key)}); keep one"
                )
    return problems
