"""``rigd reprocess``: what a reprocessed file's latency means, the frames a row that
collided with another job counts, and truncated or unsealed run files as sources."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.config import load_pipeline
from rigd.pipeline import plan_pipeline, replay_file
from rigd.pipeline._inline import run_inline
from rigd.service._reprocess import reprocess
from rigd.storage import RunWriter, StreamSpec, check_whole, inspect_run
from tests.service.test_reprocess import PIPELINE
from tests.service.test_reprocess_outputs import killed_writer


def _pipeline(tmp_path: Path) -> Path:
    pipeline = tmp_path / "rowsums.yaml"
    pipeline.write_text(PIPELINE)
    return pipeline


def _source(path: Path, count: int, *, latency: bool = True) -> None:
    """A run of ``count`` frames acquired just now (small latencies), ids from 100."""
    spec = StreamSpec("camera", (8, 12), np.dtype(np.uint16), latency_trace=latency)
    with RunWriter(path, [spec], run_id=path.stem) as writer:
        for k in range(count):
            writer.write("camera", np.full((8, 12), k, np.uint16), 100 + k, time.time_ns())


def test_a_replayed_stream_carries_its_sources_latency_and_a_computed_one_has_none(
    tmp_path: Path,
) -> None:
    # Was: latency_ns was the recorder's write time minus the source's acquisition
    # time, kept by the replay: `rigd inspect` said p50 557403 ms (time since the run).
    _source(tmp_path / "run.h5", 30)
    (done,) = reprocess(_pipeline(tmp_path), [str(tmp_path / "run.h5")], tmp_path / "out")
    assert done.state == "done", done.error

    with h5py.File(tmp_path / "run.h5", "r") as f:
        theirs = dict(zip(f["camera/frame_id"][:], f["camera/latency_ns"][:], strict=True))
    with h5py.File(done.output or "", "r") as f:
        ids, latency = f["camera/frame_id"][:], f["camera/latency_ns"]
        assert list(latency[:]) == [theirs[i] for i in ids]
        assert latency.attrs["carried_from_source"]
        assert "latency_ns" not in f["sums"]  # computed by the replay: no latency to give
        assert len(f["sums/frame_id"]) == 30
    summary = {s.name: s for s in inspect_run(done.output or "").streams}
    source = {s.name: s for s in inspect_run(tmp_path / "run.h5").streams}
    assert summary["camera"].latency_p50_ms == source["camera"].latency_p50_ms
    assert summary["camera"].latency_p50_ms is not None
    assert summary["camera"].latency_p50_ms < 60_000  # not the time since the source's run
    assert summary["sums"].latency_p50_ms is None


def test_a_replayed_stream_whose_source_has_no_latency_has_none(tmp_path: Path) -> None:
    _source(tmp_path / "run.h5", 10, latency=False)
    (done,) = reprocess(_pipeline(tmp_path), [str(tmp_path / "run.h5")], tmp_path / "out")

    assert done.state == "done", done.error
    with h5py.File(done.output or "", "r") as f:
        assert "latency_ns" not in f["camera"]
        assert "latency_ns" not in f["sums"]
        assert len(f["camera/frame_id"]) == 10


def test_a_file_another_job_made_meanwhile_is_a_row_of_0_frames_and_is_left_as_it_is(
    tmp_path: Path,
) -> None:
    # Was: two jobs into one --out at once: the loser's FileExistsError row counted the
    # winner's frames as its own (and its failure could mark the winner's file failed).
    pipeline = _pipeline(tmp_path)
    _source(tmp_path / "r1.h5", 5)
    _source(tmp_path / "r2.h5", 12)
    out = tmp_path / "out"
    theirs = out / "r2-reprocessed.h5"

    def the_other_job(done: int, total: int, row: object) -> None:
        if done == 1:  # after r2's output was found free, before r2's replay began
            other = replay_file(PIPELINE, tmp_path / "r2.h5", str(out), job="the-other-job")
            assert other["state"] == "done", other["error"]

    first, second = reprocess(
        pipeline, [str(tmp_path / "r1.h5"), str(tmp_path / "r2.h5")], out, progress=the_other_job
    )

    assert first.state == "done", first.error
    assert second.state == "failed"
    assert (second.error or "").startswith(f"FileExistsError: {theirs} exists")
    assert second.frames == 0
    with h5py.File(theirs, "r") as f:  # the other job's file, as that job sealed it
        assert f.attrs["run_state"] == "complete"
        assert f.attrs["reprocess_job"] == "the-other-job"
        assert "failure" not in f.attrs
    assert sum(s.frames for s in inspect_run(theirs).streams) == 24


def _truncated(tmp_path: Path) -> Path:
    _source(tmp_path / "whole.h5", 40)
    cut = tmp_path / "cut.h5"
    cut.write_bytes((tmp_path / "whole.h5").read_bytes()[:20_000])  # as `head -c 20000`
    return cut


def test_a_truncated_run_file_is_said_to_be_truncated_by_reprocess_and_by_playback(
    tmp_path: Path,
) -> None:
    # Was: "... holds no recorded stream", where `rigd inspect` said it was truncated.
    cut = _truncated(tmp_path)
    with pytest.raises(ValueError, match="is truncated: it holds 20000 bytes") as raised:
        check_whole(cut)
    assert "Copy the whole file again from its source" in str(raised.value)
    check_whole(tmp_path / "whole.h5")  # a whole file passes
    before = cut.read_bytes()

    (row,) = reprocess(_pipeline(tmp_path), [str(cut)], tmp_path / "out")
    assert row.state == "failed"
    assert (row.error or "").startswith(f"ValueError: {cut} is truncated: it holds 20000 bytes")
    assert "holds no recorded stream" not in (row.error or "")
    assert list((tmp_path / "out").iterdir()) == []

    played = PIPELINE.replace(
        "class: rigd.pipeline.SimulatedCamera\n    options: {shape: [8, 12], fps: 100, "
        "overflow: block}",
        f'class: rigd.pipeline.FilePlayback\n    options: {{path: "{cut}", rate: max}}',
    )
    assert played != PIPELINE
    with pytest.raises(ValueError, match=f"{cut} is truncated"):
        plan_pipeline(load_pipeline("<test>", text=played))
    assert cut.read_bytes() == before  # nothing of it was changed


def test_playback_of_an_unsealed_file_in_a_run_warns_naming_rigd_recover(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "live.h5"
    killed_writer(path)
    played = PIPELINE.replace(
        "class: rigd.pipeline.SimulatedCamera\n    options: {shape: [8, 12], fps: 100, "
        "overflow: block}",
        f'class: rigd.pipeline.FilePlayback\n    options: {{path: "{path}", rate: max}}',
    ).replace("directory: rigd-data", f'directory: "{tmp_path / "out"}"')
    with caplog.at_level(logging.WARNING, logger="rigd.pipeline"):
        report = run_inline(plan_pipeline(load_pipeline("<test>", text=played)), "played")

    assert sum(report["frames"].values()) == 10  # played, not refused: 5 frames, 5 sums
    warned = [r.getMessage() for r in caplog.records if "is not sealed" in r.getMessage()]
    assert len(warned) == 1, caplog.text
    assert f"seal it first with `rigd recover {path}`" in warned[0]
