"""The built-in sources' options are checked at load, each refusal naming the file
and line, the option and what it takes: none waits for the actor's constructor."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from rigd.config import PipelineFileError
from rigd.pipeline import FilePlayback, plan_pipeline
from rigd.storage import RunWriter, StreamSpec


def run_file(tmp_path: Path) -> Path:
    path = tmp_path / "source.h5"
    with RunWriter(path, [StreamSpec("camera", (4, 4), np.dtype(np.uint16))], run_id="src") as w:
        for k in range(3):
            w.write("camera", np.full((4, 4), k, np.uint16), k, 1_700_000_000_000_000_000 + k)
    return path


def refused(tmp_path: Path, actor: str) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(f"name: bad\nactors:\n  - {actor}\n")
    with pytest.raises(PipelineFileError) as info:
        plan_pipeline(path)
    (problem,) = info.value.problems
    assert problem.startswith(f"{path}, line 3, actors[0].options: "), problem
    return problem


@pytest.mark.parametrize(
    ("options", "says"),
    [
        # Was: accepted at load; the run then failed to start (exit 1) with
        # "The actor FilePlayback (...) died: its constructor raised ... ValueError".
        ("rate: fast", "rate must be 'recorded' (the gaps between the recorded acquisition"),
        ("rate: 2.0", "or 'max' (as fast as the readers take them), got 2.0"),
        ("loop: 'yes'", "loop must be true or false, got 'yes'"),
        ("stream: [camera]", "stream must be a stream's name in the file"),
    ],
)
def test_a_file_playback_option_it_cannot_take_is_refused_at_load(
    tmp_path: Path, options: str, says: str
) -> None:
    source = run_file(tmp_path)
    problem = refused(
        tmp_path,
        f"{{name: player, class: rigd.pipeline.FilePlayback, "
        f"options: {{path: '{source}', {options}}}}}",
    )
    assert says in problem, problem


def test_file_playback_s_accepted_options_plan_and_its_constructor_refuses_the_same(
    tmp_path: Path,
) -> None:
    source = run_file(tmp_path)
    good = tmp_path / "good.yaml"
    good.write_text(
        textwrap.dedent(f"""
        name: good
        actors:
          - {{name: player, class: rigd.pipeline.FilePlayback,
             options: {{path: '{source}', stream: camera, rate: max, loop: true}}}}
        """)
    )
    (ring,) = plan_pipeline(good).rings
    assert ring.shape == (4, 4)
    with pytest.raises(ValueError, match="rate must be 'recorded'"):
        FilePlayback(str(source), rate="fast")  # the actor built by hand: the same check


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ("motion: -1", "motion must be a number of pixels >= 0, got -1"),
        ("seed: abc", "seed must be a whole number >= 0"),
        ("seed: -3", "seed must be a whole number >= 0"),
        ("n_frames: ten", "n_frames must be a whole number >= 0 (or null for unlimited)"),
        ("n_frames: 2.5", "got 2.5"),
    ],
)
def test_a_simulated_camera_option_it_cannot_take_is_refused_at_load(
    tmp_path: Path, options: str, says: str
) -> None:
    problem = refused(
        tmp_path,
        f"{{name: camera, class: rigd.pipeline.SimulatedCamera, "
        f"options: {{shape: [16, 16], {options}}}}}",
    )
    assert says in problem, problem
