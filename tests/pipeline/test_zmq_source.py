"""ZmqSource: frames from another program's ZMQ socket, in rigd's framing or the plain one."""

from __future__ import annotations

import json
import os
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest
import zmq

import rigd
from rigd.pipeline import Pipeline, ZmqSource, plan_pipeline
from rigd.service._run import format_report
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_rings_left() -> Iterator[None]:
    yield
    prefix = f"rigd-{os.getpid()}-ring-"
    assert [n for n in os.listdir("/dev/shm") if n.startswith(prefix)] == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(tmp_path: Path, actors: str, links: str) -> Pipeline:
    path = tmp_path / "pipeline.yaml"
    data = tmp_path / "data"
    recorder = (
        "- name: recorder\n  class: rigd.pipeline.HDF5Recorder\n"
        f'  options: {{directory: "{data}", flush_interval: 0.1}}'
    )
    path.write_text(
        "name: network\nactors:\n"
        + textwrap.indent(textwrap.dedent(actors).strip() + "\n" + recorder, "  ")
        + "\nlinks:\n"
        + textwrap.indent(textwrap.dedent(links).strip(), "  ")
        + "\n"
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    return pipeline


def recorded(path: str, stream: str = "frames") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with h5py.File(path, "r") as f:
        g = f[stream]
        return g["frame_id"][:], g["timestamp_ns"][:], g["frames"][:]


@pytest.fixture
def push() -> Iterator[tuple[zmq.Socket, str]]:
    """A PUSH socket bound on loopback: the other program, here the test."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.LINGER, 1000)
    address = f"tcp://127.0.0.1:{free_port()}"
    sock.bind(address)
    yield sock, address
    sock.close()
    ctx.term()


def test_plain_multipart_frames_are_recorded_bit_for_bit_until_the_end_message(
    tmp_path: Path, push: tuple[zmq.Socket, str]
) -> None:
    sock, address = push
    pipeline = start(
        tmp_path,
        f"""
        - name: network
          class: rigd.pipeline.ZmqSource
          options: {{address: "{address}", socket: pull, shape: [24, 40], dtype: int16}}
        """,
        "- {link: network.frames -> recorder.frames, slots: 4}",
    )
    rng = np.random.default_rng(7)
    frames = rng.integers(-30000, 30000, (120, 24, 40), dtype=np.int16)
    try:
        for k, frame in enumerate(frames):
            header = {"shape": [24, 40], "dtype": "int16", "frame_id": 10 + k}
            if k % 2:
                header["timestamp"] = 1.7e9 + k  # seconds, as a float
            else:
                header["timestamp_ns"] = 1_700_000_000_000_000_000 + k
            sock.send_multipart([json.dumps(header).encode(), frame.tobytes()])
        sock.send_multipart([b'{"end": true}'])
        assert pipeline.wait(60), "the end message did not end the run"
    finally:
        report = pipeline.stop()
    ids, stamps, data = recorded(report.files[0])
    np.testing.assert_array_equal(ids, 10 + np.arange(120))
    np.testing.assert_array_equal(data, frames)
    assert stamps[0] == 1_700_000_000_000_000_000
    assert stamps[1] == int((1.7e9 + 1) * 1e9)


def test_a_zmq_publisher_feeds_a_zmq_source_in_rigds_framing(tmp_path: Path) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    pipeline = start(
        tmp_path,
        f"""
        - name: camera
          class: rigd.pipeline.SimulatedCamera
          options: {{shape: [16, 16], fps: 200, n_frames: 100000, pattern: counter}}
        - name: publisher
          class: rigd.pipeline.ZmqPublisher
          options: {{address: "{address}", rate_hz: 1000, topic: cam}}
        - name: network
          class: rigd.pipeline.ZmqSource
          options: {{address: "{address}", shape: [16, 16], dtype: uint16, topic: cam,
                     n_frames: 60}}
        """,
        """
        - {link: camera.frames -> publisher.frames, policy: latest}
        - {link: network.frames -> recorder.frames}
        """,
    )
    try:
        source = pipeline.handle("network")
        wait_until(
            lambda: rigd.get(source.status.remote())["frames_received"] == 60,
            timeout=60,
            what="60 frames through the publisher",
        )
    finally:
        report = pipeline.stop()
    ids, _, data = recorded(report.files[0])
    assert len(ids) == 60
    assert (np.diff(ids.astype(np.int64)) > 0).all()
    assert ledger(report.files[0]) == []  # the publisher's ids skip (latest): not lost
    # Each frame is the camera's frame of that id, bit for bit.
    expected = (ids % 65536).astype(np.uint16)[:, None, None] * np.ones((16, 16), np.uint16)
    np.testing.assert_array_equal(data, expected)


def test_hostile_messages_are_rejected_counted_and_the_source_goes_on(
    tmp_path: Path, push: tuple[zmq.Socket, str]
) -> None:
    sock, address = push
    pipeline = start(
        tmp_path,
        f"""
        - name: network
          class: rigd.pipeline.ZmqSource
          options: {{address: "{address}", socket: pull, shape: [4, 4], dtype: uint8}}
        """,
        "- {link: network.frames -> recorder.frames}",
    )
    good = np.arange(16, dtype=np.uint8).reshape(4, 4)
    header = {"shape": [4, 4], "dtype": "uint8"}
    hostile = [
        [b"not json", good.tobytes()],
        [b"[1, 2]", good.tobytes()],
        [json.dumps({"dtype": "uint8"}).encode(), good.tobytes()],
        [json.dumps({**header, "shape": [2, 8]}).encode(), good.tobytes()],
        [json.dumps(header).encode(), good.tobytes()[:-1]],
        [json.dumps({**header, "frame_id": "7"}).encode(), good.tobytes()],
        [json.dumps(header).encode()],
        [b"a", b"b", b"c", b"d"],
    ]
    try:
        sock.send_multipart([json.dumps({**header, "frame_id": 5}).encode(), good.tobytes()])
        for message in hostile:
            sock.send_multipart(message)
        # An id that goes back is rejected too; then a good frame, then the end.
        sock.send_multipart([json.dumps({**header, "frame_id": 5}).encode(), good.tobytes()])
        sock.send_multipart([json.dumps({**header, "frame_id": 6}).encode(), good.tobytes()])
        sock.send_multipart([b"topic", b'{"end": true}'])
        assert pipeline.wait(60)
        status = rigd.get(pipeline.handle("network").status.remote())
    finally:
        report = pipeline.stop()
    assert status["rejected"] == len(hostile) + 1
    assert "ids must increase" in status["last_rejection"]
    ids, _, data = recorded(report.files[0])
    np.testing.assert_array_equal(ids, [5, 6])
    np.testing.assert_array_equal(data, [good, good])


def ledger(path: str, stream: str = "frames") -> list[tuple[int, int, str]]:
    with h5py.File(path, "r") as f:
        return [
            (int(r["first_id"]), int(r["count"]), r["reason"].decode())
            for r in f[stream]["dropped"][:]
        ]


def send(sock: zmq.Socket, ids: list[int | None], frame: np.ndarray) -> None:
    for frame_id in ids:
        header: dict[str, object] = {"shape": list(frame.shape), "dtype": str(frame.dtype)}
        if frame_id is not None:
            header["frame_id"] = frame_id
        sock.send_multipart([json.dumps(header).encode(), frame.tobytes()])


def source(address: str, frame_ids: str | None = None) -> str:
    option = f", frame_ids: {frame_ids}" if frame_ids else ""
    return f"""
        - name: network
          class: rigd.pipeline.ZmqSource
          options: {{address: "{address}", socket: pull, shape: [4, 4], dtype: uint8{option}}}
        """


def test_a_senders_own_ids_that_skip_are_recorded_as_sent_and_are_not_lost_frames(
    tmp_path: Path, push: tuple[zmq.Socket, str]
) -> None:
    # Was: ids 10, 12, 14, ... gave "N recorded, N - 1 dropped", a gap per frame
    # in the ledger and a log line per frame.
    sock, address = push
    pipeline = start(tmp_path, source(address), "- {link: network.frames -> recorder.frames}")
    frame = np.arange(16, dtype=np.uint8).reshape(4, 4)
    ids = list(range(10, 10 + 2 * 150, 2))
    try:
        send(sock, ids, frame)
        sock.send_multipart([b'{"end": true}'])
        assert pipeline.wait(60)
        status = rigd.get(pipeline.handle("network").status.remote())
    finally:
        report = pipeline.stop()
    recorded_ids, _, _ = recorded(report.files[0])
    np.testing.assert_array_equal(recorded_ids, ids)
    assert ledger(report.files[0]) == []
    assert report.frames == {"frames": 150}
    assert report.dropped == {"frames": 0}
    assert (status["frames_received"], status["frames_lost"]) == (150, 0)
    assert report.actor_lines["network"].startswith("150 frame(s) received")
    assert report.log is not None
    assert "not recorded" not in Path(report.log).read_text()


def test_consecutive_ids_that_skip_are_frames_lost_and_a_bad_message_is_in_the_summary(
    tmp_path: Path, push: tuple[zmq.Socket, str]
) -> None:
    sock, address = push
    pipeline = start(
        tmp_path, source(address, "consecutive"), "- {link: network.frames -> recorder.frames}"
    )
    frame = np.ones((4, 4), np.uint8)
    try:
        send(sock, [7, 8, 9], frame)
        send(sock, [10], np.ones((2, 2), np.uint8))  # rejected: its id is not a frame lost
        sock.send_multipart([b"not json", frame.tobytes()])
        send(sock, [12, 13, 17], frame)
        sock.send_multipart([b'{"end": true}'])
        assert pipeline.wait(60)
        status = rigd.get(pipeline.handle("network").status.remote())
    finally:
        report = pipeline.stop()
    assert ledger(report.files[0]) == [(10, 1, "rejected"), (11, 1, "gap"), (14, 3, "gap")]
    assert (status["frames_lost"], status["rejected"]) == (4, 2)
    assert report.dropped == {"frames": 5}
    line = report.actor_lines["network"]
    assert "6 frame(s) received" in line
    assert "4 lost on the way" in line
    assert "2 message(s) rejected (last: its header is not JSON)" in line
    assert f"  actor network: {line}" in format_report(report)  # `rigd run`'s summary
    assert report.log is not None  # the recorder's lines about the gaps are in the run's log
    assert "3 frame(s) from id 14 not recorded (gap)" in Path(report.log).read_text()


def test_count_renumbers_frames_as_they_arrive_whatever_the_sender_says(
    tmp_path: Path, push: tuple[zmq.Socket, str]
) -> None:
    sock, address = push
    pipeline = start(
        tmp_path, source(address, "count"), "- {link: network.frames -> recorder.frames}"
    )
    frames = np.arange(4 * 16, dtype=np.uint8).reshape(4, 4, 4)
    try:
        # A sender restarted (its ids back to 0), then one with no ids at all.
        for frame_id, frame in zip([100, 101, 0, None], frames, strict=True):
            send(sock, [frame_id], frame)
        sock.send_multipart([b'{"end": true}'])
        assert pipeline.wait(60)
    finally:
        report = pipeline.stop()
    ids, _, data = recorded(report.files[0])
    np.testing.assert_array_equal(ids, [0, 1, 2, 3])
    np.testing.assert_array_equal(data, frames)
    assert ledger(report.files[0]) == []


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"socket": "req"}, "socket must be one of"),
        ({"shape": [0]}, "shape must be positive"),
        ({"dtype": "object"}, "plain numeric dtype"),
        ({"n_frames": -1}, "n_frames must be an int >= 0"),
        ({"frame_ids": "auto"}, r"frame_ids must be one of \['sender', 'consecutive', 'count'\]"),
    ],
)
def test_bad_options_are_refused_with_the_fix(options: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ZmqSource(**options)
