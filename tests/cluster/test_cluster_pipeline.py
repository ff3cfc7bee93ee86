"""A pipeline across the 2 nodes of a real Ray cluster: camera (A) -> processor (B) -> recorder (A).

The cross-node links become bridges over tcp; the node of the processor is
removed mid-run in the last test.
"""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import rigd
from rigd.pipeline import ClusterPipeline
from tests.helpers import wait_until

pytest.importorskip("ray", reason="Ray is the test extra's (pip install 'rigd[cluster]')")


@pytest.fixture(scope="module", autouse=True)
def connected(cluster: Any) -> Iterator[None]:
    rigd.shutdown()
    rigd.init(address=f"ray:{cluster.address}")
    yield
    rigd.shutdown()


@pytest.fixture(autouse=True)
def _no_leftovers() -> None:
    # The session is the module's (the connection to the cluster), not each test's.
    return


def port_base() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port if port < 60000 else 40000


def write(tmp_path: Path, camera: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: two_pcs
            actors:
              - name: camera
                class: rigd.pipeline.SimulatedCamera
                options: {{{camera}}}
                node: node_a
              - name: rowsum
                class: tests.pipeline.actors.RowSum
                node: node_b
              - name: recorder
                class: rigd.pipeline.HDF5Recorder
                options: {{directory: "{tmp_path / "data"}", flush_interval: 0.1}}
                node: node_a
            links:
              - {{link: camera.frames -> rowsum.frames, slots: 16}}
              - {{link: camera.frames -> recorder.camera, slots: 16}}
              - {{link: rowsum.sums -> recorder.sums, slots: 16}}
            """
        )
    )
    return path


def read(path: str, stream: str) -> dict[str, Any]:
    with h5py.File(path, "r") as f:
        g = f[stream]
        return {
            "frame_id": g["frame_id"][:],
            "frames": g["frames"][:],
            "dropped": g["dropped"][:],
            "state": str(f.attrs["run_state"]),
            "hosts": json.loads(f.attrs["stream_hosts"]),
        }


def expected_sums(ids: np.ndarray) -> np.ndarray:
    # RowSum: the sum of the first row of each counter frame (24 pixels of id % 65536).
    return ((ids.astype(np.int64) % 65536) * 24)[:, None]


def test_camera_on_a_processor_on_b_recorder_on_a_records_every_frame(tmp_path: Path) -> None:
    pipeline = ClusterPipeline(
        write(tmp_path, "shape: [16, 24], fps: 500, n_frames: 1000, pattern: counter"),
        port_base=port_base(),
    )
    pipeline.start()
    try:
        assert pipeline.wait(90), "the run did not end across the cluster"
    finally:
        report = pipeline.stop()
    assert report.state == "stopped", report.failure
    (file,) = report.files
    camera, sums = read(file, "camera"), read(file, "sums")
    np.testing.assert_array_equal(camera["frame_id"], np.arange(1000))
    np.testing.assert_array_equal(sums["frame_id"], np.arange(1000))
    np.testing.assert_array_equal(sums["frames"], expected_sums(sums["frame_id"]))
    assert len(camera["dropped"]) == len(sums["dropped"]) == 0
    assert camera["state"] == "complete"
    # Each stream says where it came from (the local cluster's nodes share a host).
    assert set(camera["hosts"]) == {"camera", "sums"}


def test_the_processors_node_removed_mid_run_fails_the_run_and_seals_the_file(
    tmp_path: Path, cluster: Any
) -> None:
    pipeline = ClusterPipeline(
        write(tmp_path, "shape: [16, 24], fps: 300, pattern: counter"), port_base=port_base()
    )
    pipeline.start()
    try:
        wait_until(
            lambda: any((tmp_path / "data").glob("*.h5")),
            timeout=30,
            what="the run file",
        )
        (file,) = (tmp_path / "data").glob("*.h5")
        wait_until(lambda: _recorded(file, "sums") >= 100, timeout=60, what="100 sums recorded")
        (node_b,) = [n for n in cluster.list_all_nodes() if not n.head]
        cluster.remove_node(node_b)
        wait_until(lambda: pipeline.state == "failed", timeout=60, what="the run to fail")
    finally:
        report = pipeline.stop()
    assert report.state == "failed"
    assert "node node_b lost" in (report.failure or "")
    camera = read(str(file), "camera")
    assert camera["state"] == "complete"  # sealed
    reasons = [r["reason"].decode() for r in camera["dropped"]]
    assert any("node node_b lost" in r for r in reasons), reasons
    np.testing.assert_array_equal(camera["frame_id"], np.arange(len(camera["frame_id"])))


def _recorded(path: Path, stream: str) -> int:
    try:
        with h5py.File(path, "r", swmr=True) as f:
            return len(f[stream]["frame_id"])
    except (OSError, KeyError):
        return 0
