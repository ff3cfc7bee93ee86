"""A run's end says how many store entries it removed and names a few, not every key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rigd.pipeline import Pipeline, plan_pipeline
from tests.pipeline.sources import write

PIPELINE = """
name: many_keys
actors:
  - {name: frames, class: tests.pipeline.store_actors.KeyPerStep, options: {n: 300}}
"""


def test_a_run_that_put_many_store_keys_logs_their_count_and_the_first_five(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rigd.pipeline")
    pipeline = Pipeline(plan_pipeline(write(tmp_path, PIPELINE)), run_id="many")
    pipeline.start()
    try:
        assert pipeline.wait(60), "the pipeline did not finish in time"
    finally:
        pipeline.stop()
    (line,) = [r.getMessage() for r in caplog.records if "store entries" in r.getMessage()]
    # Was: every key of the run listed (346 KB after 5 s of an improv-style run).
    assert line == (
        "pipeline many_keys: run many's store entries removed: 300 (frame_00000, frame_00001, "
        "frame_00002, frame_00003, frame_00004 and 295 more); kept: none"
    )
