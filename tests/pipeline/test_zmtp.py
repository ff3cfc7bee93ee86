"""The bridge receiver's ZMQ connection (ZMTP 3.0 over a plain socket), against
libzmq's own ROUTER, and against hand-written peers that misbehave."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import zmq

from rigd.pipeline._zmtp import ZmtpDealer, endpoint
from tests.helpers import wait_until


@pytest.fixture
def router() -> Iterator[tuple[zmq.Socket[bytes], str]]:
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    yield sock, f"tcp://127.0.0.1:{port}"
    sock.close(linger=0)
    context.term()


def connected(address: str, stall_s: float = 5.0) -> ZmtpDealer:
    dealer = ZmtpDealer(address, stall_s=stall_s)
    wait_until(dealer.connect, 10, f"a connection to {address} ({dealer.problem})")
    return dealer


def greeted(router: zmq.Socket[bytes], dealer: ZmtpDealer) -> bytes:
    """The routing id the ROUTER knows the dealer by (it says hello first)."""
    assert dealer.send([b"hello"])
    assert router.poll(10_000)
    routing_id, hello = router.recv_multipart()
    assert hello == b"hello"
    return routing_id


def test_parts_arrive_whole_and_a_frame_goes_straight_into_its_buffer(
    router: tuple[zmq.Socket[bytes], str],
) -> None:
    sock, address = router
    dealer = connected(address)
    routing_id = greeted(sock, dealer)
    assert len(routing_id) == 8
    assert dealer.send([b"A", struct.pack("<q", 41)])
    assert sock.recv_multipart() == [routing_id, b"A", struct.pack("<q", 41)]

    payload = np.random.default_rng(1).integers(0, 65535, (1024, 1536), dtype=np.uint16)
    long_part = os.urandom(300)  # more than 255 bytes: a long size on the wire
    sock.send_multipart([routing_id, b"F", payload, long_part], copy=False)
    frame = np.zeros_like(payload)
    assert dealer.poll(10_000)
    assert dealer.recv() == b"F"
    assert dealer.more
    assert dealer.recv_into(memoryview(frame).cast("B")) == payload.nbytes
    assert dealer.more
    np.testing.assert_array_equal(frame, payload)
    assert dealer.recv() == long_part
    assert not dealer.more

    # A part of another size is dropped whole, and the stream stays in step.
    sock.send_multipart([routing_id, b"x" * 100])
    sock.send_multipart([routing_id, b"next"])
    small = np.zeros(50, np.uint8)
    assert dealer.recv_into(memoryview(small)) == 100
    assert not small.any()
    assert dealer.recv() == b"next"
    dealer.close()


@pytest.mark.parametrize("name", ["file", "abstract"])
def test_an_ipc_router_is_reached_too(tmp_path: Path, name: str) -> None:
    address = (
        f"ipc://{tmp_path / 'bridge'}" if name == "file" else f"ipc://@rigd-test-{os.getpid()}"
    )
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    sock.bind(address)
    try:
        dealer = connected(address)
        routing_id = greeted(sock, dealer)
        sock.send_multipart([routing_id, b"W", b"{}"])
        assert dealer.poll(10_000)
        assert [dealer.recv(), dealer.recv()] == [b"W", b"{}"]
        dealer.close()
    finally:
        sock.close(linger=0)
        context.term()


def test_a_router_that_goes_away_is_found_again_as_a_new_peer(
    router: tuple[zmq.Socket[bytes], str],
) -> None:
    sock, address = router
    dealer = connected(address)
    first = greeted(sock, dealer)
    sock.close(linger=0)
    with pytest.raises(ConnectionError, match="closed"):
        dealer.poll(10_000)
    assert not dealer.connected
    assert not dealer.send([b"A"])  # nothing is queued while not connected
    context = zmq.Context()
    again = context.socket(zmq.ROUTER)
    again.bind(address)
    try:
        wait_until(dealer.connect, 10, "a connection to the new ROUTER")
        assert greeted(again, dealer) != first
    finally:
        dealer.close()
        again.close(linger=0)
        context.term()


def test_the_routers_heartbeats_are_answered_so_it_keeps_the_connection() -> None:
    context = zmq.Context()
    sock = context.socket(zmq.ROUTER)
    # libzmq drops a peer that answers no PING within 300 ms.
    sock.setsockopt(zmq.HEARTBEAT_IVL, 50)
    sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, 300)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    try:
        dealer = connected(f"tcp://127.0.0.1:{port}")
        routing_id = greeted(sock, dealer)
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            assert not dealer.poll(50)  # PINGs only: no message part begins
        assert dealer.send([b"still here"])
        assert sock.poll(5_000)
        assert sock.recv_multipart() == [routing_id, b"still here"]
        sock.send_multipart([routing_id, b"yes"])
        assert dealer.poll(5_000)
        assert dealer.recv() == b"yes"
        dealer.close()
    finally:
        sock.close(linger=0)
        context.term()


def read_one(dealer: ZmtpDealer) -> bytes:
    assert dealer.poll(5_000)
    return dealer.recv()


class FakeRouter:
    """A listener that answers the greeting by hand, then sends ``then``."""

    def __init__(self, then: bytes, greeting: bytes | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        ready = b"\x05READY\x0bSocket-Type" + struct.pack(">I", 6) + b"ROUTER"
        self.greeting = (
            greeting
            if greeting is not None
            else b"\xff"
            + bytes(8)
            + b"\x7f\x03\x01"
            + b"NULL".ljust(20, b"\0")
            + bytes(32)
            + bytes([0x04, len(ready)])
            + ready
        )
        self.then = then
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.sendall(self.greeting + self.then)
            self.done.wait(30)  # keeps the connection open, silent, until the test ends

    def close(self) -> None:
        self.done.set()
        self.thread.join(10)
        self.listener.close()


@pytest.mark.parametrize(
    ("then", "problem"),
    [
        (b"\x02" + struct.pack(">Q", 1000) + b"0123456789", "no data for 0.3 s inside a message"),
        (b"\x00" + b"\x09", "no data for 0.3 s inside a message"),
        (b"\x02" + struct.pack(">Q", 2**62), "sent a part of 4611686018427387904 bytes"),
        (b"\x06" + struct.pack(">Q", 2**40), "sent a command of 1099511627776 bytes"),
    ],
)
def test_a_peer_that_stalls_or_sends_a_huge_part_is_cut_off(then: bytes, problem: str) -> None:
    peer = FakeRouter(then)
    try:
        dealer = connected(peer.address, stall_s=0.3)
        with pytest.raises(ConnectionError, match=problem):
            read_one(dealer)
        assert not dealer.connected  # closed: ConnectionError says so
    finally:
        peer.close()


def test_a_part_too_short_for_the_buffer_is_cut_off_when_the_peer_stalls() -> None:
    peer = FakeRouter(b"\x02" + struct.pack(">Q", 4096) + bytes(100))
    try:
        dealer = connected(peer.address, stall_s=0.3)
        assert dealer.poll(5_000)
        with pytest.raises(ConnectionError, match="inside a message"):
            dealer.recv_into(memoryview(bytearray(4096)))
    finally:
        peer.close()


def test_what_is_not_a_router_is_refused_with_the_reason() -> None:
    http = FakeRouter(b"", greeting=b"HTTP/1.1 400 Bad Request\r\n\r\n" + bytes(64))
    try:
        dealer = ZmtpDealer(http.address)
        assert not dealer.connect()
        assert dealer.problem is not None
        assert "does not speak ZMTP 3" in dealer.problem
    finally:
        http.close()
    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    try:
        dealer = ZmtpDealer(f"tcp://127.0.0.1:{port}")
        assert not dealer.connect()
        assert dealer.problem is not None
        assert "not a ROUTER" in dealer.problem
    finally:
        publisher.close(linger=0)
        context.term()
    with socket.create_server(("127.0.0.1", 0)) as unused:
        address = f"tcp://127.0.0.1:{unused.getsockname()[1]}"
    dealer = ZmtpDealer(address)
    assert not dealer.connect()
    assert not dealer.connected
    assert dealer.problem is not None
    assert "refused" in dealer.problem


def test_a_peer_that_reads_nothing_fills_the_queue_and_sends_are_refused() -> None:
    peer = FakeRouter(b"")
    try:
        dealer = connected(peer.address)
        ack = [b"A", struct.pack("<q", 1)]
        sent = 0
        while dealer.send(ack):
            sent += 1
            assert sent < 1_000_000, "sends never refused"
        assert dealer.connected  # refused, not disconnected: a later send may go
        dealer.close()
    finally:
        peer.close()


@pytest.mark.parametrize(
    "address",
    ["tcp://*:5600", "tcp://camera-pc", "tcp://host:0", "tcp://host:65536", "ipc://", "udp://h:1"],
)
def test_addresses_it_cannot_connect_to_are_refused_with_the_forms(address: str) -> None:
    with pytest.raises(ValueError, match=r"give tcp://HOST:PORT .* or ipc://PATH"):
        endpoint(address)


def test_ipv6_and_host_names_are_understood() -> None:
    assert endpoint("tcp://[::1]:5600") == (socket.AF_INET, ("::1", 5600))
    assert endpoint("tcp://camera-pc:5600") == (socket.AF_INET, ("camera-pc", 5600))
