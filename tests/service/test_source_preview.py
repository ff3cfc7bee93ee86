"""Real instruments seen live: a GenICam camera (Aravis's simulator over GVSP)
and a TIFF stack, each in a pipeline of a real ``rigd serve``, viewed through
the console's live view (``/v1/preview``, the WebSocket the page draws from)
and checked pixel for pixel against the run file or the stack."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.pipeline.camera import DEVICE_ID, Simulator, simulator
from tests.service.daemon import Daemon, serving

__all__ = ["simulator"]

pytestmark = pytest.mark.integration

GENICAM = f"""\
name: genicam_live
actors:
  - name: camera
    class: rigd.pipeline.GenICamCamera
    options: {{device_id: {DEVICE_ID}, pixel_format: Mono8, width: 128, height: 96,
               frame_rate: 30}}
record: [camera.frames]
"""

TIFF = """\
name: tiff_live
actors:
  - name: stack
    class: rigd.pipeline.TiffStack
    options: {path: "@PATH@", fps: 30, loop: true}
record: [stack.frames]
"""


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    with serving(tmp_path_factory.mktemp("live")) as d:
        yield d


def view(daemon: Daemon, stream: str, frames: int = 2) -> list[tuple[dict[str, Any], Any]]:
    """``frames`` frames of ``stream`` as the console gets them: PNG, contrast
    0 to 255 (for 8-bit frames: the pixels as they are), full size."""
    import websocket

    ws = websocket.create_connection(
        daemon.url.replace("http", "ws", 1) + "/v1/preview", timeout=30
    )
    seen: list[tuple[dict[str, Any], Any]] = []
    deadline = time.monotonic() + 30
    try:
        settings = {"format": "png", "contrast": [0, 255], "max_size": 512, "stream": stream}
        ws.send(json.dumps({"token": daemon.token, "fps": 20, **settings}))
        while len(seen) < frames:
            meta = json.loads(ws.recv())
            assert meta["type"] in ("frame", "idle"), meta
            if meta["type"] == "idle":
                assert time.monotonic() < deadline, f"no frame of {stream} to view: {meta}"
                continue  # the run's rings are not up yet
            image = np.asarray(Image.open(io.BytesIO(ws.recv())))
            seen.append((meta, image))
            ws.send(json.dumps({"ack": meta["seq"]}))
    finally:
        ws.close()
    return seen


def test_a_genicam_camera_is_seen_live_as_it_is_recorded(
    daemon: Daemon, simulator: Simulator
) -> None:
    daemon.load(GENICAM)
    started = daemon.client.post("/v1/runs", json={})
    assert started.status_code == 201, started.text

    try:
        seen = view(daemon, "camera.frames")
    finally:
        stopped = daemon.client.post("/v1/runs/current/stop").json()

    assert stopped["state"] == "complete"
    with h5py.File(stopped["files"][0], "r") as f:
        ids = f["camera/frame_id"][:].tolist()
        for meta, image in seen:
            assert meta["shape"] == [96, 128]
            assert meta["step"] == 1
            recorded = f["camera/frames"][ids.index(meta["frame_id"])]
            assert np.array_equal(image, recorded), "the view shows the frame as recorded"
    assert seen[0][0]["frame_id"] < seen[1][0]["frame_id"]


def test_a_tiff_stack_is_seen_live_frame_for_frame(daemon: Daemon) -> None:
    stack = np.random.default_rng(7).integers(0, 256, (20, 40, 64), dtype=np.uint8)
    daemon.data_dir.mkdir(exist_ok=True)
    path = daemon.data_dir / "stack.tif"
    tifffile.imwrite(path, stack)
    daemon.load(TIFF.replace("@PATH@", str(path)))
    started = daemon.client.post("/v1/runs", json={})
    assert started.status_code == 201, started.text

    try:
        seen = view(daemon, "stack.frames")
    finally:
        stopped = daemon.client.post("/v1/runs/current/stop").json()

    assert stopped["state"] == "complete"
    for meta, image in seen:
        assert np.array_equal(image, stack[meta["frame_id"] % len(stack)])
