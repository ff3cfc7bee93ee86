"""Helpers of the source tests: run a pipeline file to its end, read a stream back."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from rigd.pipeline import Pipeline, RunReport, plan_pipeline
from tests.helpers import wait_until


def write(tmp_path: Path, text: str, name: str = "pipeline.yaml", **values: Any) -> Path:
    """Write a pipeline file; ``@DATA@`` becomes the test's data folder, ``@KEY@`` a value."""
    path = tmp_path / name
    text = textwrap.dedent(text).replace("@DATA@", str(tmp_path / "data"))
    for key, value in values.items():
        text = text.replace(f"@{key.upper()}@", str(value))
    path.write_text(text)
    return path


def run(path: Path, timeout: float = 60, **kwargs: Any) -> RunReport:
    """Run the pipeline until its sources end; return the report."""
    pipeline = Pipeline(plan_pipeline(path), **kwargs)
    pipeline.start()
    try:
        assert pipeline.wait(timeout), "the pipeline did not finish in time"
    finally:
        report = pipeline.stop()
    return report


def read_stream(path: str, stream: str) -> dict[str, Any]:
    """A recorded stream's frames, ids, times and ledger, and the file's attributes."""
    with h5py.File(path, "r") as f:
        group = f[stream]
        return {
            "frames": group["frames"][:],
            "frame_id": group["frame_id"][:],
            "timestamp_ns": group["timestamp_ns"][:],
            "dropped": group["dropped"][:],
            "attrs": dict(f.attrs),
        }


def ledger(stream: dict[str, Any]) -> list[tuple[int, int, str]]:
    return [(int(r["first_id"]), int(r["count"]), r["reason"].decode()) for r in stream["dropped"]]


def frames_equal(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))


def kill_and_await_restart(pipeline: Pipeline, actor: str, timeout: float = 30) -> None:
    """SIGKILL one actor of a running pipeline; return once it was restarted."""
    os.kill(pipeline.status().actors[actor]["pid"], signal.SIGKILL)
    wait_until(
        lambda: pipeline.status().actors[actor]["restarts"] == 1,
        timeout=timeout,
        what=f"{actor} restarted",
    )


def run_with_a_restart(path: Path, actor: str, after: int, **kwargs: Any) -> RunReport:
    """Run the pipeline to its end, with ``actor`` killed (and restarted) once
    ``after`` frames went down its first link; the report."""
    pipeline = Pipeline(plan_pipeline(path), **kwargs)
    pipeline.start()
    try:
        wait_until(
            lambda: pipeline.status().links[0].written >= after, timeout=30, what=f"{after} frames"
        )
        kill_and_await_restart(pipeline, actor)
        assert pipeline.wait(60), "the pipeline did not finish in time"
    finally:
        report = pipeline.stop()
    return report


def assert_each_frame_once(recorded: dict[str, Any], data: np.ndarray[Any, Any]) -> None:
    """Ids increase to the last of ``data``, and each frame is the one its id names
    (a restarted source replayed nothing twice)."""
    ids = list(recorded["frame_id"])
    assert ids == sorted(set(ids)), "frame ids repeated or out of order"
    assert ids[-1] == len(data) - 1
    assert all(
        np.array_equal(frame, data[i]) for frame, i in zip(recorded["frames"], ids, strict=True)
    )
