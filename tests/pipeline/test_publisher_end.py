"""ZmqPublisher ends its stream: a rigd subscribed to another rigd's publisher ends with it."""

from __future__ import annotations

import os
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import h5py
import pytest

from rigd.pipeline import Pipeline, plan_pipeline


@pytest.fixture(autouse=True)
def _no_rings_left() -> Iterator[None]:
    yield
    prefix = f"rigd-{os.getpid()}-ring-"
    assert [n for n in os.listdir("/dev/shm") if n.startswith(prefix)] == []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _pipeline(tmp_path: Path, name: str, text: str) -> Pipeline:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(text))
    return Pipeline(plan_pipeline(path))


def test_a_subscribed_zmq_source_ends_when_the_publishers_input_ends(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{_free_port()}"
    receiving = _pipeline(
        tmp_path,
        "receiving",
        f"""
        name: receiving
        actors:
          - name: network
            class: rigd.pipeline.ZmqSource
            options: {{address: "{address}", shape: [8, 8], dtype: uint16, topic: cam}}
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {{directory: "{tmp_path / "received"}"}}
        links:
          - {{link: network.frames -> recorder.frames}}
        """,
    )
    publishing = _pipeline(
        tmp_path,
        "publishing",
        f"""
        name: publishing
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {{shape: [8, 8], fps: 200, n_frames: 200, pattern: counter}}
          - name: publisher
            class: rigd.pipeline.ZmqPublisher
            options: {{address: "{address}", rate_hz: 1000, topic: cam}}
        links:
          - {{link: camera.frames -> publisher.frames, policy: latest}}
        """,
    )
    receiving.start()
    try:
        publishing.start()
        try:
            assert publishing.wait(60), "the camera's 200 frames did not end the publishing run"
        finally:
            publishing.stop()
        assert receiving.wait(30), "the publisher's end message did not end the receiving run"
    finally:
        report = receiving.stop()
    assert report.state == "stopped"
    with h5py.File(report.files[0], "r") as f:
        assert 0 < len(f["frames"]["frame_id"]) <= 200
