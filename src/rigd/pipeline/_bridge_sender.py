"""``BridgeSender``: the near end of a bridge (see ``rigd.pipeline._bridge``)."""

from __future__ import annotations

import collections
import json
import logging
import os
import time
from typing import Any, ClassVar

import zmq

from rigd._exceptions import EndOfStream
from rigd.actors import Actor
from rigd.pipeline._bridge_wire import HEARTBEAT_S, ID, POLL_MS, check_timeouts
from rigd.storage import ReaderPolicy

__all__ = ["BridgeSender"]

log = logging.getLogger(__name__)


class BridgeSender(Actor):
    """Sends the frames of its ``frames`` input to a ``BridgeReceiver`` over ZMQ.

    Args:
        address: where to bind, e.g. ``tcp://0.0.0.0:5600`` (the receiver connects).
        window: frames sent and not yet acknowledged, at most (lossless: the
            frames kept for sending again). 8 keeps loopback tcp busy.
        peer_timeout: seconds without a word from the receiver after which it
            is declared down and frames are discarded instead of holding the
            writer back (see the module's docstring).

    Link it with the policy the link had (``lossless`` or ``latest``); the
    receiver's link downstream says the same.
    """

    input_names = ("frames",)
    place_options: ClassVar[dict[str, str]] = {"address": "zmq"}

    def __init__(
        self, address: str = "tcp://0.0.0.0:5600", window: int = 8, peer_timeout: float = 10.0
    ) -> None:
        check_timeouts(window, peer_timeout)
        self.address = address
        self.window = window
        self.peer_timeout = float(peer_timeout)
        self.frames_sent = 0
        self.frames_resent = 0
        self.frames_lost = 0
        self.lost: list[tuple[int, int]] = []  # (first_id, count) discarded while down
        self.state = "waiting"
        self.peer: str | None = None

    def setup(self) -> None:
        reader = self.inputs.frames
        self._lossless = reader.policy is ReaderPolicy.LOSSLESS
        self._socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._socket.setsockopt(zmq.SNDHWM, 4 * self.window + 16)
        self._socket.bind(self.address)
        self._session = os.urandom(8).hex()
        self._welcome = json.dumps(
            {
                "shape": list(reader.shape),
                "dtype": reader.dtype.str,
                "policy": "lossless" if self._lossless else "latest",
                "session": self._session,
            }
        ).encode()
        self._peer_id: bytes | None = None
        self._heard = time.monotonic()  # no receiver yet: the timeout runs from now
        self._said = 0.0
        self._unacked: collections.deque[tuple[int, bytes, bytes]] = collections.deque()
        self._acked = -1
        self._ended: int | None = None  # the input's last frame id, once it ended
        self._last_id = -1
        self._end_sent = 0.0
        self._bye = False

    # -- the step ---------------------------------------------------------------------

    def run_step(self) -> None:
        self._listen(POLL_MS if not self._room() else 0)
        now = time.monotonic()
        if self.state == "up" and now - self._heard > self.peer_timeout:
            self._down(f"no word from the receiver for {self.peer_timeout:g} s")
        elif self.state == "waiting" and now - self._heard > self.peer_timeout:
            self._down(f"no receiver connected within {self.peer_timeout:g} s")
        if self._ended is not None:
            self._finish_stream(now)
            return
        if self.state == "down":
            self._discard()
        elif self._room():
            self._send_next()
        if self.state == "up" and now - self._said > HEARTBEAT_S:
            self._send([b"H"])

    def _room(self) -> bool:
        return self.state == "up" and len(self._unacked) < self.window and self._ended is None

    def _send_next(self) -> None:
        reader = self.inputs.frames
        try:
            frame = reader.get(timeout=POLL_MS / 1000)
        except TimeoutError:
            return
        except EndOfStream:
            self._ended = self._last_id
            return
        try:
            data = frame.array.tobytes()
            frame_id, timestamp_ns = frame.frame_id, frame.timestamp_ns
        finally:
            intact = reader.release(frame)
        if not intact:
            return  # a latest reader was lapped while it copied: skip the torn frame
        header = json.dumps({"frame_id": frame_id, "timestamp_ns": timestamp_ns}).encode()
        self._last_id = frame_id
        self._unacked.append((frame_id, header, data))
        if self._send([b"F", header, data]):
            self.frames_sent += 1

    def _discard(self) -> None:
        """Down: take the frames after the window off the ring so the writer goes on."""
        reader = self.inputs.frames
        try:
            frame = reader.get(timeout=POLL_MS / 1000)
        except TimeoutError:
            return
        except EndOfStream:
            self._ended = self._last_id
            return
        frame_id = frame.frame_id
        reader.release(frame)
        self._last_id = frame_id
        self.frames_lost += 1
        if self.lost and sum(self.lost[-1]) == frame_id:
            self.lost[-1] = (self.lost[-1][0], self.lost[-1][1] + 1)
        else:
            self.lost.append((frame_id, 1))

    def _finish_stream(self, now: float) -> None:
        if self._lossless and self._unacked and self.state != "down":
            return  # the receiver has frames to acknowledge (or to be sent again)
        if self.state == "up" and now - self._end_sent > HEARTBEAT_S:
            self._send([b"E", ID.pack(self._ended if self._ended is not None else -1)])
            self._end_sent = now
        if self.state != "up" or self._bye:
            self.finish()

    # -- the receiver's side ------------------------------------------------------------

    def _listen(self, timeout_ms: int) -> None:
        socket = self._socket
        if not socket.poll(timeout_ms, zmq.POLLIN):
            return
        while True:
            try:
                peer, kind, *rest = socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            except ValueError:
                continue  # not our framing: a stray connection
            if kind == b"B":
                self._bye = True
                continue
            if kind != b"A" or len(rest) != 1 or len(rest[0]) != ID.size:
                continue
            (last_id,) = ID.unpack(rest[0])
            self._heard = time.monotonic()
            if peer != self._peer_id:
                self._adopt(peer, last_id)
            self._ack(last_id)
            if self.state != "up":
                log.warning("bridge %s: the receiver is back (%s)", self.address, self.state)
                self.state = "up"

    def _adopt(self, peer: bytes, last_id: int) -> None:
        """A receiver (new, or restarted) talked: welcome it, send again what it lacks."""
        self._peer_id = peer
        self.peer = peer.hex()
        self.state = "up"
        self._send([b"W", self._welcome])
        self._acked = max(self._acked, last_id) if self._lossless else last_id
        if not self._lossless:
            self._unacked.clear()
            return
        for frame_id, header, data in list(self._unacked):
            if frame_id > last_id and self._send([b"F", header, data]):
                self.frames_resent += 1

    def _ack(self, last_id: int) -> None:
        if last_id > self._acked:
            self._acked = last_id
        unacked = self._unacked
        while unacked and unacked[0][0] <= last_id:
            unacked.popleft()
        if not self._lossless:
            # Latest: the window counts frames in flight; anything older than
            # the acknowledged one was passed by and is not coming.
            while len(unacked) > 0 and unacked[0][0] <= self._acked:
                unacked.popleft()

    def _send(self, parts: list[bytes]) -> bool:
        if self._peer_id is None:
            return False
        try:
            self._socket.send_multipart([self._peer_id, *parts], zmq.NOBLOCK, copy=False)
        except (zmq.Again, zmq.ZMQError) as exc:
            # Unroutable (the peer disconnected) or its queue is full: the
            # frame stays in the window and goes again when it is back.
            if not isinstance(exc, zmq.Again) and exc.errno != zmq.EHOSTUNREACH:
                raise
            return False
        self._said = time.monotonic()
        return True

    def _down(self, why: str) -> None:
        log.warning("bridge %s: the receiver is down (%s); frames are discarded", self.address, why)
        self.state = "down"

    def stop(self) -> None:
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close(linger=0)

    def status(self) -> dict[str, Any]:
        """The link's state (``waiting``, ``up``, ``down``) and counters."""
        return {
            "state": self.state,
            "address": self.address,
            "peer": self.peer,
            "frames_sent": self.frames_sent,
            "frames_resent": self.frames_resent,
            "frames_lost": self.frames_lost,
            "lost": list(self.lost),
        }
