"""Bridges: a link carried over ZMQ tcp between two actor processes, on loopback.

The sender and the receiver are separate processes, as they are on two
machines; the tests kill, stop and restart the far end for real.
"""

from __future__ import annotations

import os
import signal
import socket
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

import rigd
from rigd.pipeline import (
    BridgeReceiver,
    BridgeSender,
    Pipeline,
    PipelineFailedError,
    plan_pipeline,
)
from rigd.service._run import format_report
from tests.helpers import wait_until
from tests.pipeline.sources import kill_and_await_restart

ACTORS = "tests.pipeline.actors"


def ring_segments() -> list[str]:
    return [n for n in os.listdir("/dev/shm") if n.startswith(f"rigd-{os.getpid()}-ring-")]


@pytest.fixture(autouse=True)
def _no_rings_left() -> Iterator[None]:
    yield
    assert ring_segments() == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def bridged(
    tmp_path: Path,
    camera: str,
    sender: str = "",
    receiver: str = "",
    policy: str = "lossless",
    viewer: str = "",
) -> Pipeline:
    """camera -> sender ~~tcp~~> receiver -> recorder (and -> viewer, a SlowViewer)."""
    address = f"tcp://127.0.0.1:{free_port()}"
    text = textwrap.dedent(
        f"""
        name: bridged
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {{{camera}}}
          - name: sender
            class: rigd.pipeline.BridgeSender
            options: {{address: "{address}", {sender}}}
            max_restarts: 1
          - name: receiver
            class: rigd.pipeline.BridgeReceiver
            options: {{address: "{address}", shape: [32, 32], dtype: uint16, {receiver}}}
            max_restarts: 1
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {{directory: "{tmp_path / "data"}", flush_interval: 0.1}}
          - name: viewer
            class: {ACTORS}.SlowViewer
            options: {{delay: {viewer or 0}}}
        links:
          - {{link: camera.frames -> sender.frames, slots: 8, policy: {policy}}}
          - {{link: receiver.frames -> recorder.camera, slots: 8}}
        """
    )
    if viewer:
        text += "  - {link: receiver.frames -> viewer.frames, slots: 2}\n"
    else:
        text = text.replace(f"  - name: viewer\n    class: {ACTORS}.SlowViewer\n", "")
        text = text.replace("    options: {delay: 0}\n", "")
    path = tmp_path / "pipeline.yaml"
    path.write_text(text)
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    return pipeline


def read(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    with h5py.File(path, "r") as f:
        g = f["camera"]
        return g["frame_id"][:], g["frames"][:], g["dropped"][:], str(f.attrs["run_state"])


def assert_counter_frames(ids: np.ndarray, frames: np.ndarray) -> None:
    assert (np.diff(ids.astype(np.int64)) > 0).all(), "frames repeated or out of order"
    expected = (ids % 65536).astype(np.uint16)[:, None, None] * np.ones((32, 32), np.uint16)
    np.testing.assert_array_equal(frames, expected)


def test_every_frame_crosses_a_bridge_bit_for_bit_and_the_stream_ends(tmp_path: Path) -> None:
    # As fast as the far end takes them, through 8 slots and a window of 4:
    # the camera is held back (lossless), never overruns.
    pipeline = bridged(tmp_path, "shape: [32, 32], n_frames: 2000", sender="window: 4")
    try:
        assert pipeline.wait(60), "the end of stream did not cross the bridge"
        sender = rigd.get(pipeline.handle("sender").status.remote())
    finally:
        report = pipeline.stop()
    assert report.state == "stopped"
    assert report.dropped == {"camera": 0}
    ids, frames, dropped, state = read(report.files[0])
    np.testing.assert_array_equal(ids, np.arange(2000))
    assert_counter_frames(ids, frames)
    assert len(dropped) == 0
    assert state == "complete"
    assert sender["frames_sent"] == 2000
    assert sender["frames_lost"] == 0


def test_sigkill_of_the_receiver_loses_no_frame_and_a_stop_drains_the_link(
    tmp_path: Path,
) -> None:
    pipeline = bridged(tmp_path, "shape: [32, 32], fps: 500, pattern: counter, overflow: block")
    try:
        receiver = pipeline.handle("receiver")
        wait_until(
            lambda: rigd.get(receiver.status.remote())["frames_received"] >= 200,
            timeout=30,
            what="200 frames across the bridge",
        )
        kill_and_await_restart(pipeline, "receiver")
        receiver = pipeline.handle("receiver")
        wait_until(
            lambda: rigd.get(receiver.status.remote())["frames_received"] >= 200,
            timeout=30,
            what="200 more frames across the bridge",
        )
        sender = rigd.get(pipeline.handle("sender").status.remote())
    finally:
        # A clean stop mid-stream: the camera, then the sender drains and ends
        # the stream, then the receiver, then the recorder.
        report = pipeline.stop()
    ids, frames, dropped, state = read(report.files[0])
    # The restarted receiver said which frame it had last; the sender sent
    # the rest of its window again: every frame, once, in order, from the
    # first to the last the camera made before the stop.
    assert len(ids) >= 400
    np.testing.assert_array_equal(ids, np.arange(len(ids)))
    assert_counter_frames(ids, frames)
    assert sender["frames_lost"] == 0
    reasons = [r["reason"].decode() for r in dropped]
    assert any("receiver restarted" in r for r in reasons), reasons
    assert int(dropped["count"].sum()) == 0
    assert state == "complete"


def test_sigkill_of_the_sender_puts_what_it_held_in_the_far_ledger(tmp_path: Path) -> None:
    pipeline = bridged(
        tmp_path, "shape: [32, 32], fps: 500, n_frames: 2000, pattern: counter, overflow: block"
    )
    try:
        receiver = pipeline.handle("receiver")
        wait_until(
            lambda: rigd.get(receiver.status.remote())["frames_received"] >= 200,
            timeout=30,
            what="200 frames across the bridge",
        )
        kill_and_await_restart(pipeline, "sender")
        assert pipeline.wait(60), "the restarted sender did not carry the stream to its end"
        after = rigd.get(receiver.status.remote())
    finally:
        report = pipeline.stop()
    ids, frames, dropped, state = read(report.files[0])
    assert_counter_frames(ids, frames)
    assert ids[-1] == 1999
    # The receiver stayed; the new sender's frames follow the old one's, and
    # what was in flight when it died is a gap in the far side's ledger.
    assert len(ids) + int(dropped["count"].sum()) == 2000
    assert any("sender restarted" in r["reason"].decode() for r in dropped)
    assert after["state"] == "up"
    assert state == "complete"


def test_a_stalled_receiver_is_declared_down_and_the_gap_is_in_the_ledger(
    tmp_path: Path,
) -> None:
    pipeline = bridged(
        tmp_path,
        "shape: [32, 32], fps: 500, n_frames: 1000, pattern: counter, overflow: block",
        sender="peer_timeout: 0.5, window: 4",
    )
    try:
        receiver, sender = pipeline.handle("receiver"), pipeline.handle("sender")
        wait_until(
            lambda: rigd.get(receiver.status.remote())["frames_received"] >= 200,
            timeout=30,
            what="200 frames across the bridge",
        )
        pid = pipeline.status().actors["receiver"]["pid"]
        os.kill(pid, signal.SIGSTOP)  # it stops reading: the network stalls
        try:
            wait_until(
                lambda: rigd.get(sender.status.remote())["frames_lost"] >= 50,
                timeout=30,
                what="the sender to declare the receiver down and go on",
            )
            assert rigd.get(sender.status.remote())["state"] == "down"
        finally:
            os.kill(pid, signal.SIGCONT)
        wait_until(
            lambda: rigd.get(sender.status.remote())["state"] == "up",
            timeout=30,
            what="the receiver back up",
        )
        assert pipeline.wait(60)
        status = rigd.get(sender.status.remote())
    finally:
        report = pipeline.stop()
    ids, frames, dropped, _ = read(report.files[0])
    assert_counter_frames(ids, frames)
    gaps = [(int(r["first_id"]), int(r["count"])) for r in dropped if r["count"]]
    # What the sender discarded while the receiver was down is what the
    # file's ledger says is missing; everything else was recorded.
    assert sum(count for _, count in gaps) == status["frames_lost"] > 0
    assert sorted(gaps) == sorted(tuple(x) for x in status["lost"])
    assert len(ids) + status["frames_lost"] == 1000


def test_a_latest_bridge_conflates_and_never_holds_the_camera_back(tmp_path: Path) -> None:
    # A far end that takes 20 ms a frame; the camera makes 400 as fast as it
    # can. A latest link sends the newest frame when there is room, skips
    # the rest, and the camera finishes at its own pace.
    pipeline = bridged(
        tmp_path,
        "shape: [32, 32], n_frames: 400, fps: 1000",
        policy="latest",
        sender="window: 1",
        viewer="0.02",
    )
    try:
        camera = pipeline.handle("camera")
        wait_until(
            lambda: rigd.get(camera.status.remote())["frames_written"] == 400,
            timeout=30,
            what="the camera to finish at its own rate",
        )
        assert pipeline.wait(60)
        receiver = rigd.get(pipeline.handle("receiver").status.remote())
    finally:
        report = pipeline.stop()
    ids, frames, _, state = read(report.files[0])
    assert_counter_frames(ids, frames)
    assert receiver["frames_received"] == len(ids) < 400
    assert state == "complete"


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"window": 0}, "window must be an int >= 1"),
        ({"window": 2.5}, "window must be an int >= 1"),
        ({"peer_timeout": -1}, "peer_timeout must be positive"),
        ({"peer_timeout": "10"}, "peer_timeout must be a number of seconds"),
    ],
)
def test_bad_sender_options_are_refused_with_the_fix(options: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        BridgeSender(**options)


def test_bad_receiver_options_are_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match="shape must be positive sizes"):
        BridgeReceiver(shape=[0, 4])
    with pytest.raises(ValueError, match="is not a numpy dtype"):
        BridgeReceiver(dtype="pixels")
    for address in ("tcp://*:5600", "tcp://camera-pc", "tcp://host:99999", "udp://host:1", ""):
        with pytest.raises(ValueError, match="give tcp://HOST:PORT"):
            BridgeReceiver(address=address)


def one_side(tmp_path: Path, name: str, actors: str, links: str) -> Pipeline:
    """One machine's half of a bridged pipeline, started."""
    text = f"name: {name}\nactors:\n{textwrap.dedent(actors)}links:\n{textwrap.dedent(links)}"
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    return pipeline


CAMERA_SIDE = """\
  - {{name: camera, class: rigd.pipeline.SimulatedCamera,
     options: {{shape: [32, 32], fps: {fps}, n_frames: {n}, pattern: counter}}}}
  - {{name: sender, class: rigd.pipeline.BridgeSender,
     options: {{address: "{address}", peer_timeout: 0.5}}}}
  - {{name: recorder, class: rigd.pipeline.HDF5Recorder,
     options: {{directory: "{data}"}}}}
"""
CAMERA_LINKS = """\
  - {link: camera.frames -> sender.frames, slots: 8}
  - {link: camera.frames -> recorder.camera, slots: 64}
"""


def far_side(tmp_path: Path, name: str, address: str, shape: str = "[32, 32]") -> Pipeline:
    return one_side(
        tmp_path,
        name,
        f"""\
  - {{name: receiver, class: rigd.pipeline.BridgeReceiver,
     options: {{address: "{address}", shape: {shape}, dtype: uint16}}}}
  - {{name: recorder, class: rigd.pipeline.HDF5Recorder,
     options: {{directory: "{tmp_path / name}"}}}}
""",
        "  - {link: receiver.frames -> recorder.camera}\n",
    )


def test_a_sender_with_no_receiver_does_not_hold_its_camera_back(tmp_path: Path) -> None:
    # Before: once down, the sender took one frame per 50 ms step, so a 200 fps
    # camera kept ~20 frames/s and the camera PC's own recorder lost 9 in 10.
    address = f"tcp://127.0.0.1:{free_port()}"
    actors = CAMERA_SIDE.format(fps=200, n=600, address=address, data=tmp_path / "near")
    pipeline = one_side(tmp_path, "near", actors, CAMERA_LINKS)
    try:
        assert pipeline.wait(60)
        sender = rigd.get(pipeline.handle("sender").status.remote())
    finally:
        report = pipeline.stop()
    assert sender["state"] == "down"
    # The summary says nothing reached the far end, and how many frames went nowhere.
    assert sender["frames_lost"] > 0
    line = (
        f"0 frame(s) reached the receiver at {address}, {sender['frames_lost']} discarded "
        f"while it was down (last down: no receiver connected within 0.5 s)"
    )
    assert report.actor_lines["sender"] == line
    assert f"  actor sender: {line}\n" in format_report(report)
    ids, _, _, _ = read(report.files[0])
    # 600 delivered; frames the camera dropped while the sender waited for a
    # receiver (0.5 s at most, its ring of 8) are few.
    assert len(ids) == 600
    assert int(ids[-1]) < 600 + 0.6 * 200, f"the camera was held back: last id {ids[-1]}"


def test_a_receiver_of_other_frames_fails_its_run_and_the_sender_goes_on(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    actors = CAMERA_SIDE.format(fps=200, n=100_000, address=address, data=tmp_path / "near")
    near = one_side(tmp_path, "near", actors, CAMERA_LINKS)
    try:
        far = far_side(tmp_path, "far", address, shape="[64, 64]")
        try:
            with pytest.raises(PipelineFailedError, match=r"the sender's frames are \[32, 32\]"):
                far.wait(30)
            assert "ended for good" in (far.failure or "")  # not restarted: no use
        finally:
            far.stop()
        sender = near.handle("sender")
        wait_until(
            lambda: rigd.get(sender.status.remote())["state"] == "down",
            timeout=30,
            what="the sender to let the receiver go",
        )
    finally:
        report = near.stop()
    # The refused link's frames went nowhere: the summary says so (was: nothing).
    line = report.actor_lines["sender"]
    assert line.startswith(f"0 frame(s) reached the receiver at {address}, "), line
    assert "discarded while it was down (last down: no word from the receiver" in line, line


def test_a_second_receiver_is_refused_and_the_first_keeps_the_stream(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    actors = CAMERA_SIDE.format(fps=200, n=600, address=address, data=tmp_path / "near")
    actors = actors.replace("peer_timeout: 0.5", "peer_timeout: 10")
    first = far_side(tmp_path, "first", address)
    try:
        near = one_side(tmp_path, "near", actors, CAMERA_LINKS)
        try:
            receiver = first.handle("receiver")
            wait_until(
                lambda: rigd.get(receiver.status.remote())["frames_received"] >= 50,
                timeout=30,
                what="frames at the first receiver",
            )
            second = far_side(tmp_path, "second", address)
            try:
                with pytest.raises(PipelineFailedError, match="already feeds another receiver"):
                    second.wait(30)
            finally:
                second.stop()
            assert near.wait(60)
        finally:
            near.stop()
        assert first.wait(30), "the first receiver did not get the end of stream"
    finally:
        report = first.stop()
    ids, frames, _, state = read(report.files[0])
    np.testing.assert_array_equal(ids, np.arange(600))
    assert_counter_frames(ids, frames)
    assert state == "complete"


def test_a_receiver_whose_sender_is_not_there_stops_at_once(tmp_path: Path) -> None:
    # Before: a stop waited 60 s for an end of stream no sender would send.
    far = far_side(tmp_path, "far", f"tcp://127.0.0.1:{free_port()}")
    begun = time.monotonic()
    report = far.stop()
    assert time.monotonic() - begun < 10
    assert report.state == "stopped"


@pytest.mark.parametrize(
    ("actor", "options", "problem"),
    [
        ("BridgeReceiver", 'address: "http://camera-pc:5600"', "give tcp://HOST:PORT"),
        ("BridgeReceiver", 'address: "tcp://camera-pc:notaport"', "give tcp://HOST:PORT"),
        ("BridgeSender", 'address: "tcp://0.0.0.0:99999"', "is not one to bind"),
        ("BridgeSender", 'address: "camera-pc:5600"', "is not one to bind"),
    ],
)
def test_bad_bridge_addresses_are_refused_at_planning_with_their_line(
    tmp_path: Path, actor: str, options: str, problem: str
) -> None:
    from rigd.config import PipelineFileError

    text = textwrap.dedent(
        f"""\
        name: bad
        actors:
          - {{name: camera, class: rigd.pipeline.SimulatedCamera, options: {{shape: [32, 32]}}}}
          - {{name: link, class: rigd.pipeline.{actor}, options: {{{options}}}}}
        """
    )
    if actor == "BridgeSender":
        text += "links:\n  - camera.frames -> link.frames\n"
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(PipelineFileError) as info:
        plan_pipeline(path)
    (found,) = info.value.problems
    assert "line 4" in found
    assert problem in found
