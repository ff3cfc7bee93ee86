"""A clean stop keeps to its timeout, and says the truth of what it waits for; a
``with Pipeline(...)`` block stops its run however it is left."""

from __future__ import annotations

import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rigd.pipeline import Pipeline, plan_pipeline
from rigd.storage import check_sealed, inspect_run
from tests.helpers import wait_until

CAMERA = """
name: bounds
actors:
  - {name: camera, class: rigd.pipeline.SimulatedCamera,
     options: {shape: [16, 16], fps: 200, n_frames: 100000}}
"""


def rings_left() -> list[str]:
    return [n for n in os.listdir("/dev/shm") if n.startswith(f"rigd-{os.getpid()}-ring-")]


@pytest.fixture(autouse=True)
def _no_rings_left() -> Iterator[None]:
    yield
    assert rings_left() == []


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def test_a_stop_behind_a_step_that_never_returns_ends_within_its_timeout_as_it_says(
    tmp_path: Path,
) -> None:
    # Was: the drain took the whole timeout, then the hung step's stop said
    # "59 s more at most" and took the actor runtime's 10 s more (70 s for 60).
    path = write(
        tmp_path,
        CAMERA
        + "  - {name: hanger, class: tests.service.run_actors.Hanger}\n"
        + "links:\n  - {link: camera.frames -> hanger.frames, slots: 64}\n"
        + f"record: [camera.frames]\nrecording: {{directory: {tmp_path / 'data'}}}\n",
    )
    pipeline = Pipeline(plan_pipeline(path), run_id="hung")
    said: list[tuple[float, str, str, float]] = []
    pipeline.start()
    try:
        wait_until(lambda: pipeline.status().links[0].written > 0, timeout=30, what="frames")
        timeout = 4.0
        began = time.monotonic()
        report = pipeline.stop(
            timeout, on_wait=lambda *w: said.append((time.monotonic() - began, *w))
        )
        took = time.monotonic() - began
    finally:
        pipeline.kill()

    assert [(name, doing) for _, name, doing, _ in said] == [("hanger", "drain its inputs")]
    for at, _, _, left in said:
        assert at + left <= timeout + 0.5  # what it says fits in its timeout
    # The stop's waits end within the timeout; sealing the file and tearing down
    # after them take a little more on a loaded machine (the hung step's 10 s did not).
    assert took < timeout + 4.0, took
    (file,) = report.files
    check_sealed(file)
    assert inspect_run(file).run_state == "complete"


def test_leaving_a_with_block_by_an_exception_stops_the_run_and_seals_its_file(
    tmp_path: Path,
) -> None:
    # Was: Pipeline had no context manager, and the README's start(); wait(); stop()
    # left the actors running and the file unsealed on a Ctrl-C in wait().
    path = write(
        tmp_path,
        CAMERA + f"record: [camera.frames]\nrecording: {{directory: {tmp_path / 'data'}}}\n",
    )
    pipeline = Pipeline(plan_pipeline(path), run_id="within")

    def run_until_interrupted() -> None:
        with pipeline:
            assert pipeline.state == "running"
            wait_until(lambda: pipeline.status().links[0].written > 0, timeout=30, what="frames")
            raise KeyboardInterrupt  # as a Ctrl-C in wait() does

    with pytest.raises(KeyboardInterrupt):
        run_until_interrupted()

    assert pipeline.state == "stopped"
    report = pipeline.stop()  # the block's stop's report, again
    assert report.state == "stopped"
    assert report.frames["camera"] > 0
    (file,) = report.files
    check_sealed(file)
    assert inspect_run(file).run_state == "complete"
