"""``BridgeSender``: the near end of a bridge (see ``rigd.pipeline._bridge``).

A ``lossless`` link sends each frame straight from its ring slot (ZMQ
zero-copy, by address: ``_zmq_zero_copy``) and keeps the slot held
(``RingReader.get_ahead``) until the receiver acknowledges it: the ring's slots are the window of
frames to send again, and no frame is copied on this side. Only when the
receiver is declared down are the held frames copied out (once) and their
slots given back, so the writer goes on; the socket's ZMQ context is ended
first, which guarantees ZMQ reads no slot any more. A ``latest`` link copies
each frame once (its slot may be overwritten at any time) and sends the copy.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import zmq

from rigd._exceptions import EndOfStream, OptionValueError
from rigd.actors import Actor
from rigd.pipeline._bridge_report import sender_line
from rigd.pipeline._bridge_wire import (
    FRAME,
    HEARTBEAT_S,
    ID,
    POLL_MS,
    check_bind_address,
    check_timeouts,
)
from rigd.pipeline._zmq_address import address_refused
from rigd.pipeline._zmq_zero_copy import ZeroCopySend
from rigd.storage import Frame, ReaderPolicy

__all__ = ["BridgeSender"]

log = logging.getLogger(__name__)

_MORE = zmq.SNDMORE | zmq.NOBLOCK
#: Frames discarded in one step at most while the receiver is down.
_DISCARD_BATCH = 64


def _payload(data: Frame | bytes) -> Any:
    return data if isinstance(data, bytes) else data.array


class BridgeSender(Actor):
    """Sends the frames of its ``frames`` input to a ``BridgeReceiver`` over ZMQ.

    Args:
        address: where to bind, e.g. ``tcp://0.0.0.0:5600`` (the receiver connects).
        window: frames sent and not yet acknowledged, at most (lossless: the
            frames kept for sending again; a lossless link holds at most its
            ring's slots, 16 by default). The receiver acknowledges once per
            half window.
        peer_timeout: seconds without a word from the receiver after which it
            is declared down and frames are discarded instead of holding the
            writer back (see the module's docstring).

    Link it with the policy the link had (``lossless`` or ``latest``); the
    receiver's link downstream says the same.
    """

    input_names = ("frames",)
    place_options: ClassVar[dict[str, str]] = {"address": "zmq"}

    def __init__(
        self, address: str = "tcp://0.0.0.0:5600", window: int = 16, peer_timeout: float = 10.0
    ) -> None:
        check_timeouts(window, peer_timeout)
        check_bind_address(address)
        self.address = address
        self.window = window
        self.peer_timeout = float(peer_timeout)
        self.frames_sent = 0
        self.frames_resent = 0
        self.frames_lost = 0
        self.lost: list[tuple[int, int]] = []  # (first_id, count) discarded while down
        self.frames_acknowledged = 0  # the receiver has them
        #: Why the receiver was last declared down (``report_line``).
        self.down_reason: str | None = None
        self.state = "waiting"
        self.peer: str | None = None

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        # Checked when the file is planned: a bad option names its line.
        check_timeouts(options.get("window", 16), options.get("peer_timeout", 10.0))
        check_bind_address(options.get("address", "tcp://0.0.0.0:5600"))
        return {}

    def setup(self) -> None:
        reader = self.inputs.frames
        self._lossless = reader.policy is ReaderPolicy.LOSSLESS
        self._bind(self.address)
        # The address bound: with port ``*`` (or 0), the one the system chose.
        self.endpoint = self._socket.getsockopt_string(zmq.LAST_ENDPOINT)
        self._session = os.urandom(8).hex()
        # The frames it sends before it waits for an acknowledgement: a
        # lossless reader holds at most its ring's slots.
        self._window = min(self.window, reader.slot_count) if self._lossless else self.window
        self._welcome = json.dumps(
            {
                "shape": list(reader.shape),
                "dtype": reader.dtype.str,
                "policy": "lossless" if self._lossless else "latest",
                "session": self._session,
                "window": self._window,
            }
        ).encode()
        self._peer_id: bytes | None = None
        self._refused: set[bytes] = set()  # second receivers, told so
        self._heard = time.monotonic()  # no receiver yet: the timeout runs from now
        self._said = 0.0
        # (frame_id, header, data): ``data`` is the held ``Frame`` (lossless,
        # sent from its slot) or a copy (latest, or lossless after a down).
        self._unacked: collections.deque[tuple[int, bytes, Frame | bytes]] = collections.deque()
        self._acked = -1
        self._ended: int | None = None  # the input's last frame id, once it ended
        self._last_id = -1
        self._end_sent = 0.0
        self._bye = False

    # -- the step ---------------------------------------------------------------------

    def run_step(self) -> None:
        # Down, frames are taken off the ring as fast as they come: no wait here.
        self._listen(0 if self._room() or self.state == "down" else POLL_MS)
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
        elif self._room() and self._send_next(POLL_MS / 1000):
            # What else the writer has ready, while the window has room.
            while self._room() and self._send_next(0):
                pass
        if self.state == "up" and now - self._said > HEARTBEAT_S:
            self._send([b"H"])

    def _room(self) -> bool:
        return self.state == "up" and len(self._unacked) < self._window and self._ended is None

    def _send_next(self, timeout: float) -> bool:
        """Send the next frame if one comes within ``timeout`` s; whether one did."""
        try:
            frame = self._next_frame(self.inputs.frames, timeout)
        except TimeoutError:
            return False
        except EndOfStream:
            self._ended = self._last_id
            return False
        if frame is None:
            return True  # a torn copy, skipped: there may be a newer frame
        frame_id, timestamp_ns, data = frame
        header = FRAME.pack(b"F", frame_id, timestamp_ns)
        self._last_id = frame_id
        self._unacked.append((frame_id, header, data))
        if self._send_frame(header, data):
            self.frames_sent += 1
        return True

    def _next_frame(self, reader: Any, timeout: float) -> tuple[int, int, Frame | bytes] | None:
        """The next frame to send (its id, its stamp, and itself, held in its
        slot, for lossless, or a copy, for latest); None: a torn copy, skipped.

        Raises: as ``RingReader.get``."""
        if self._lossless:
            held: Frame = reader.get_ahead(timeout=timeout)
            return held.frame_id, held.timestamp_ns, held
        frame: Frame = reader.get(timeout=timeout)
        try:
            data = frame.array.tobytes()
        finally:
            intact = reader.release(frame)
        if not intact:
            return None  # a latest reader was lapped while it copied: skip the torn frame
        return frame.frame_id, frame.timestamp_ns, data

    def _discard(self) -> None:
        """Down: take the frames after the window off the ring, all that are there
        (waiting ``POLL_MS`` for the first), so the writer goes on at its own rate."""
        reader = self.inputs.frames
        timeout = POLL_MS / 1000
        for _ in range(_DISCARD_BATCH):  # then listen again: the receiver may be back
            try:
                frame = reader.get(timeout=timeout)
            except TimeoutError:
                return
            except EndOfStream:
                self._ended = self._last_id
                return
            self._lose(reader, frame)
            timeout = 0.0

    def _lose(self, reader: Any, frame: Frame) -> None:
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
        if not zmq.zmq_poll(self._poll_in, timeout_ms):
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
            if peer != self._peer_id:
                if self._serving_another(peer):
                    continue
                self._heard = time.monotonic()
                self._adopt(peer, last_id)
            self._heard = time.monotonic()
            self._ack(last_id)
            if self.state != "up":
                log.warning("bridge %s: the receiver is back (%s)", self.address, self.state)
                self.state = "up"

    def _serving_another(self, peer: bytes) -> bool:
        """Whether a new peer is a second receiver, refused: the one served is up
        and still connected (a restarted or reconnected receiver's old connection
        is gone, and the new one is welcomed)."""
        current = self._peer_id
        if current is None or self.state != "up":
            return False
        try:
            self._socket.send_multipart([current, b"H"], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                return False  # its connection is gone: the new peer takes over
            if not isinstance(exc, zmq.Again):
                raise
        if peer not in self._refused:
            self._refused.add(peer)
            log.warning(
                "bridge %s: a second receiver (%s) connected while %s is served; refused "
                "(one sender feeds one receiver)",
                self.address,
                peer.hex(),
                current.hex(),
            )
        reason = f"the sender at {self.address} already feeds another receiver ({current.hex()})"
        with contextlib.suppress(zmq.ZMQError):
            self._socket.send_multipart([peer, b"R", reason.encode()], zmq.NOBLOCK)
        return True

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
            if frame_id > last_id and self._send_frame(header, data):
                self.frames_resent += 1

    def _ack(self, last_id: int) -> None:
        if last_id > self._acked:
            self._acked = last_id
        unacked = self._unacked
        done: Frame | None = None
        while unacked and unacked[0][0] <= last_id:
            data = unacked.popleft()[2]
            self.frames_acknowledged += 1
            if not isinstance(data, bytes):
                done = data
        if done is not None:
            self.inputs.frames.release_through(done)  # in the far ring: the slots go back
        if not self._lossless:
            # Latest: the window counts frames in flight; anything older than
            # the acknowledged one was passed by and is not coming.
            while len(unacked) > 0 and unacked[0][0] <= self._acked:
                unacked.popleft()

    def _send_frame(self, header: bytes, data: Frame | bytes) -> bool:
        """A frame: its header (``FRAME``) and its data, zero-copy from the slot."""
        peer = self._peer_id
        if peer is None:
            return False
        socket = self._socket
        try:
            # A ROUTER queues a message whole or not at all: the routing id
            # and the header are only sent with the data.
            socket.send(peer, _MORE)
            socket.send(header, _MORE)
            if isinstance(data, bytes) or not self._zero_copy.available:
                socket.send(_payload(data), zmq.NOBLOCK, copy=False)
            else:
                # From the held slot, with no free function: it stays held
                # until acknowledged, or until the context ended (``_down``).
                address = self._slot_address.get(data.slot)
                if address is None:
                    address = self._slot_address[data.slot] = data.array.ctypes.data
                self._zero_copy.send(address, data.array.nbytes, zmq.NOBLOCK)
        except (zmq.Again, zmq.ZMQError) as exc:
            if not isinstance(exc, zmq.Again) and exc.errno != zmq.EHOSTUNREACH:
                raise
            return False
        self._said = time.monotonic()
        return True

    def _send(self, parts: list[Any]) -> bool:
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
        self.down_reason = why
        held = [entry for entry in self._unacked if not isinstance(entry[2], bytes)]
        if not held:
            return
        # Copy the held frames out and give their slots back, so the writer is
        # not held back by a receiver that may never come back. ZMQ may still
        # hold them, queued for the silent peer: end the context (which waits
        # until every queued message is dropped) before a slot is given back.
        self._unbind()
        self._unacked = collections.deque(
            (frame_id, header, data if isinstance(data, bytes) else data.array.tobytes())
            for frame_id, header, data in self._unacked
        )
        self.inputs.frames.release_through(held[-1][2])
        self._bind(self.endpoint)
        self._peer_id = None  # a receiver that talks again is welcomed anew

    def _bind(self, address: str) -> None:
        # A context of its own: ending it is how the sender knows ZMQ let go of its slots.
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self._socket.setsockopt(zmq.SNDHWM, 4 * self.window + 16)
        try:
            self._socket.bind(address)
        except zmq.ZMQError as exc:  # one line, as ZmqSource's: a port taken, say
            self._unbind()
            del self._socket
            raise OptionValueError(
                "address", address_refused("BridgeSender", address, True, exc)
            ) from None
        self._zero_copy = ZeroCopySend(self._socket)
        self._poll_in: list[tuple[Any, int]] = [(self._socket, zmq.POLLIN)]
        self._slot_address: dict[int, int] = {}

    def _unbind(self) -> None:
        self._socket.close(linger=0)
        self._context.term()

    def stop(self) -> None:
        if getattr(self, "_socket", None) is not None:
            self._unbind()  # before the ring is detached: ZMQ reads no slot after this

    def status(self) -> dict[str, Any]:
        """The link's state (``waiting``, ``up``, ``down``) and counters."""
        return {
            "state": self.state,
            "address": self.address,
            "endpoint": getattr(self, "endpoint", None),
            "peer": self.peer,
            "frames_sent": self.frames_sent,
            "frames_resent": self.frames_resent,
            "frames_lost": self.frames_lost,
            "frames_acknowledged": self.frames_acknowledged,
            "lost": list(self.lost),
        }

    def report_line(self) -> str:
        """The run summary's line: what reached the receiver (``_bridge_report``)."""
        unacknowledged = len(getattr(self, "_unacked", ()))
        lost, reason = self.frames_lost, self.down_reason
        where = getattr(self, "endpoint", None) or self.address  # the port bound, for ``*``
        return sender_line(where, self.frames_acknowledged, lost, unacknowledged, reason)
