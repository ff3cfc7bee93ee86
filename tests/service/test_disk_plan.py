"""The planned size of a run: a stream fed by a bounded source is bounded too,
so a planned run that fits is neither warned of nor refused; an unbounded one
is warned of by its rate."""

from __future__ import annotations

from pathlib import Path

import pytest

from rigd.pipeline import plan_pipeline
from rigd.service._disk import DiskWatch
from rigd.service._run import DEMO_PIPELINE

UNBOUNDED = """\
name: endless
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [64, 64], dtype: uint16, fps: 50}
  - name: stats
    class: rigd.pipeline.FrameStats
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
links:
  - {link: camera.frames -> stats.frames}
  - {link: stats.stats -> recorder.stats}
"""


def _snapshot(rate_hz: float) -> dict[str, object]:
    return {"links": [{"ring": "camera.frames", "rate_hz": rate_hz}]}


def test_the_demo_run_is_planned_with_its_stats_stream_bounded_by_the_camera() -> None:
    plan = plan_pipeline(DEMO_PIPELINE)
    planned = DiskWatch.planned_bytes(plan)
    camera = 2000 * 512 * 512 * 2
    assert planned is not None
    assert camera < planned < camera * 1.01  # the stats add 2,000 small records


def test_a_planned_run_that_fits_is_not_warned_of_however_fast_it_records(
    tmp_path: Path,
) -> None:
    plan = plan_pipeline(DEMO_PIPELINE)
    watch = DiskWatch(tmp_path, warn_minutes=1e9)
    disk = watch.sample(_snapshot(200.0), plan, "demo-1")  # type: ignore[arg-type]
    assert disk["minutes_left"] < 1e9
    assert "warning" not in disk


def test_a_stream_fed_by_an_unbounded_source_is_warned_of_by_its_rate(
    tmp_path: Path,
) -> None:
    (tmp_path / "endless.yaml").write_text(UNBOUNDED)
    plan = plan_pipeline(tmp_path / "endless.yaml")
    assert DiskWatch.planned_bytes(plan) is None
    watch = DiskWatch(tmp_path, warn_minutes=1e9)
    disk = watch.sample({"links": [{"ring": "stats.stats", "rate_hz": 50.0}]}, plan, "e-1")  # type: ignore[arg-type]
    assert "fills in" in disk["warning"]


@pytest.mark.parametrize("n_frames", [True, "100", None])
def test_a_source_whose_n_frames_is_not_an_integer_counts_as_unbounded(
    tmp_path: Path, n_frames: object
) -> None:
    plan = plan_pipeline(DEMO_PIPELINE)
    camera = next(a for a in plan.actors if a.name == "camera")
    camera.options["n_frames"] = n_frames
    assert DiskWatch.planned_bytes(plan) is None
