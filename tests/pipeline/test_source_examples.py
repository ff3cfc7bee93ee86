"""The source examples in examples/: each plans, and the file sources run end to end."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from rigd.pipeline import plan_pipeline
from tests.pipeline.camera import DEVICE_ID, Simulator
from tests.pipeline.sources import read_stream, run

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples"


def samples() -> object:
    spec = importlib.util.spec_from_file_location("make_samples", EXAMPLES / "make_samples.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def local_copy(tmp_path: Path, example: str, replace: dict[str, str]) -> Path:
    text = (EXAMPLES / example / "pipeline.yaml").read_text()
    text = text.replace("directory: rigd-data", f"directory: {tmp_path / 'data'}")
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / f"{example}.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("example", "sample"), [("video", "behaviour.mkv"), ("tiff", "stack.tif")])
def test_the_file_source_examples_run_on_their_samples(
    tmp_path: Path, example: str, sample: str
) -> None:
    make = samples()
    target = tmp_path / sample
    if example == "video":
        make.make_video(target, frames=20)  # type: ignore[attr-defined]
    else:
        make.make_stack(target, frames=20)  # type: ignore[attr-defined]
    flat_out = {"video": ("rate: native", "rate: max"), "tiff": ("fps: 30", "fps: null")}
    old, new = flat_out[example]
    path = local_copy(tmp_path, example, {f"examples/{example}/{sample}": str(target), old: new})

    report = run(path)

    stream = next(iter(report.frames))
    assert report.frames[stream] == 20
    assert read_stream(report.files[0], stream)["attrs"]["run_state"] == "complete"


def test_the_genicam_example_runs_against_the_simulator(
    simulator: Simulator, tmp_path: Path
) -> None:
    path = local_copy(
        tmp_path,
        "genicam",
        {"device_id: null": f"device_id: {DEVICE_ID}", "n_frames: 1000": "n_frames: 50"},
    )
    assert plan_pipeline(path).deferred

    report = run(path)

    assert report.frames["camera"] == 50
