"""ZmqPublisher: the latest frames over ZMQ PUB, decimated, for live viewers."""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any, ClassVar

import zmq

from rigd._exceptions import EndOfStream
from rigd.actors import Actor

__all__ = ["END_LINGER_MS", "ZmqPublisher"]

#: How long (ms) the socket tries to deliver the end message once closed.
END_LINGER_MS = 500


class ZmqPublisher(Actor):
    """Publishes ``frames`` on a ZMQ PUB socket at most ``rate_hz`` times a second.

    Link it with ``policy: latest`` so a slow viewer never holds the
    pipeline back. Each message has three parts: the topic, a JSON header
    (``frame_id``, ``timestamp_ns``, ``shape``, ``dtype``) and the frame's
    bytes. A subscriber that cannot keep up loses messages (a high-water
    mark of 2), never slows the publisher.

    When its stream ends (its input ended, or the run stopped), it sends
    ``[topic, {"end": true}]``: a ``ZmqSource`` subscribed to it (another
    rigd) then ends its own stream, as it does for any sender's end message.
    It is sent as the frames are (a subscriber too slow to take it misses
    it), and the socket keeps it up to ``END_LINGER_MS`` to deliver it.

    Args:
        address: where to bind, e.g. ``tcp://127.0.0.1:5555`` or ``ipc:///tmp/rigd-view``.
        rate_hz: the most frames per second to send.
        topic: the topic prefix of every message.
    """

    input_names = ("frames",)
    #: Options that name places: the daemon binds ipc in its runtime directory, tcp on
    #: loopback (or publish_hosts).
    place_options: ClassVar[dict[str, str]] = {"address": "zmq"}

    def __init__(
        self, address: str = "tcp://127.0.0.1:5555", rate_hz: float = 30.0, topic: str = "frames"
    ) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz must be positive, got {rate_hz}")
        self.address = address
        self.rate_hz = rate_hz
        self.topic = topic.encode()
        self.published = 0
        self._ended = False

    def setup(self) -> None:
        self._socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, 2)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind(self.address)
        self._period = 1.0 / self.rate_hz
        self._next = 0.0
        self._ended = False

    def run_step(self) -> None:
        try:
            self._publish()
        except EndOfStream:
            self._send_end()  # the input ended: so does this stream
            raise

    def _publish(self) -> None:
        frames = self.inputs.frames
        with frames.read(timeout=1.0) as frame:
            now = time.monotonic()
            if now < self._next:
                return
            self._next = now + self._period
            header = {
                "frame_id": frame.frame_id,
                "timestamp_ns": frame.timestamp_ns,
                "shape": list(frame.array.shape),
                "dtype": frame.array.dtype.str,
            }
            try:
                self._socket.send_multipart(
                    [self.topic, json.dumps(header).encode(), frame.array],
                    flags=zmq.NOBLOCK,
                    copy=True,
                )
            except zmq.Again:
                return
        self.published += 1

    def _send_end(self) -> None:
        """Send the end-of-stream message (``ZmqSource``'s framing), once."""
        if self._ended:
            return
        self._ended = True
        with contextlib.suppress(zmq.ZMQError):
            self._socket.send_multipart([self.topic, b'{"end": true}'], flags=zmq.NOBLOCK)

    def stop(self) -> None:
        socket = getattr(self, "_socket", None)
        if socket is not None:
            self._send_end()  # a stopped run ends the stream too
            socket.close(linger=END_LINGER_MS)
        if self.address.startswith("ipc://"):
            # libzmq leaves the socket file behind; it was this actor's.
            with contextlib.suppress(OSError):
                os.unlink(self.address.removeprefix("ipc://"))

    def status(self) -> dict[str, Any]:
        return {"published": self.published, "address": self.address}
