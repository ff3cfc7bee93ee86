"""The bridge's transport pieces: zero-copy sends by address, and the receiver's heap."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator

import numpy as np
import pytest
import zmq

from rigd.pipeline._heap import keep_heap_for
from rigd.pipeline._zmq_zero_copy import ZeroCopySend


@pytest.fixture
def push_pull() -> Iterator[tuple[zmq.Socket[bytes], zmq.Socket[bytes]]]:
    ctx = zmq.Context()
    push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
    push.setsockopt(zmq.LINGER, 0)
    pull.setsockopt(zmq.LINGER, 0)
    push.bind("tcp://127.0.0.1:0")  # an ephemeral port
    try:
        yield push, pull
    finally:
        push.close()
        pull.close()
        ctx.term()  # waits until libzmq dropped every message: none reads the arrays after


def test_a_frame_sent_by_address_arrives_bit_for_bit_after_its_header(
    push_pull: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
) -> None:
    push, pull = push_pull
    pull.connect(push.getsockopt_string(zmq.LAST_ENDPOINT))
    sender = ZeroCopySend(push)
    assert sender.available, "pyzmq's libzmq was not found among the mapped libraries"
    frames = np.random.default_rng(1).integers(0, 65535, (3, 512, 512), dtype=np.uint16)
    for k, frame in enumerate(frames):
        push.send(b"header %d" % k, zmq.SNDMORE)
        sender.send(frame.ctypes.data, frame.nbytes, 0)
    for k, frame in enumerate(frames):
        assert pull.poll(10_000), "the frame did not arrive"
        header, data = pull.recv_multipart()
        assert header == b"header %d" % k
        np.testing.assert_array_equal(np.frombuffer(data, np.uint16).reshape(512, 512), frame)


def test_a_send_that_cannot_be_queued_raises_again_and_the_socket_sends_after(
    push_pull: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
) -> None:
    push, pull = push_pull
    sender = ZeroCopySend(push)
    frame = np.arange(4096, dtype=np.uint8)
    with pytest.raises(zmq.Again):
        sender.send(frame.ctypes.data, frame.nbytes, zmq.NOBLOCK)  # no peer: nowhere to queue
    pull.connect(push.getsockopt_string(zmq.LAST_ENDPOINT))
    sender.send(frame.ctypes.data, frame.nbytes, 0)
    assert pull.poll(10_000), "the frame did not arrive"
    assert pull.recv() == frame.tobytes()


@pytest.mark.parametrize(
    ("nbytes", "keep_frames", "problem"),
    [(0, 16, "nbytes"), (-1, 16, "nbytes"), (1.5, 16, "nbytes"), (True, 16, "nbytes"),
     (512, 0, "keep_frames"), (512, "16", "keep_frames")],
)  # fmt: skip
def test_bad_heap_sizes_are_refused_naming_the_argument(
    nbytes: object, keep_frames: object, problem: str
) -> None:
    with pytest.raises(ValueError, match=f"{problem} must be a positive int"):
        keep_heap_for(nbytes, keep_frames)  # type: ignore[arg-type]


def test_the_heap_thresholds_are_taken_for_small_and_huge_frames() -> None:
    # In a process of its own: the settings are process-wide.
    script = textwrap.dedent(
        """
        from rigd.pipeline._heap import keep_heap_for
        print(keep_heap_for(512 * 512 * 2), keep_heap_for(64), keep_heap_for(2**31))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["True", "True", "True"]
