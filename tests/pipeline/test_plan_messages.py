"""Planning's messages for a class given without its module and an actor name given twice."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from rigd.config import PipelineFileError
from rigd.pipeline import plan_pipeline


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    with pytest.raises(PipelineFileError) as info:
        plan_pipeline(path)
    return [p.removeprefix(f"{path}, ") for p in info.value.problems]


def test_a_class_without_its_module_says_to_give_module_dot_class(tmp_path: Path) -> None:
    assert problems(
        tmp_path,
        """
        actors:
          - {name: stats, class: FrameStats}
          - {name: mine, class: MyProcessor}
          - {name: dots, class: "my..Processor"}
        """,
    ) == [
        "line 2, actors[0].class: class 'FrameStats' is not an import path; give "
        "module.Class, e.g. rigd.pipeline.FrameStats",
        "line 3, actors[1].class: class 'MyProcessor' is not an import path; give "
        "module.Class, e.g. my_actors.MyProcessor (its module, then the class)",
        "line 4, actors[2].class: class 'my..Processor' is not an import path; give "
        "module.Class, e.g. my_actors.Processor (its module, then the class)",
    ]


def test_an_actor_name_given_twice_is_the_one_problem_not_its_follow_ons(
    tmp_path: Path,
) -> None:
    # The second 'stats' is a pasted camera: before, its class replaced the
    # first's and every link to 'stats' was wrong too.
    assert problems(
        tmp_path,
        """
        actors:
          - {name: camera, class: rigd.pipeline.SimulatedCamera, options: {shape: [8, 8]}}
          - {name: stats, class: rigd.pipeline.FrameStats}
          - {name: stats, class: rigd.pipeline.SimulatedCamera, options: {shape: [8, 8]}}
          - {name: view, class: tests.pipeline.actors.SlowViewer}
        links:
          - camera.frames -> stats.frames
          - stats.frames -> view.frames
        record: [stats.stats]
        """,
    ) == [
        "line 4, actors[2].name: a second actor named 'stats' (the first is at line 3); "
        "actor names must be unique: rename or remove one"
    ]
    # What does not follow from it is still said.
    assert problems(
        tmp_path,
        """
        actors:
          - {name: camera, class: rigd.pipeline.SimulatedCamera, options: {shape: [8, 8]}}
          - {name: camera, class: rigd.pipeline.SimulatedCamera, options: {shape: [8, 8]}}
          - {name: view, class: tests.pipeline.actors.SlowViewer}
        links:
          - camera.frames -> view.frames
          - nobody.frames -> view.other
        """,
    )[1:] == [
        "line 7, links[1]: link 'nobody.frames -> view.other' names actor 'nobody', which is "
        "not in actors (camera, view)"
    ]
