"""The bridge's sending side: zero-copy sends by address (the receiving side: test_zmtp)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import zmq

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
