"""Bridges: one link of a pipeline carried between two machines over ZMQ tcp.

``BridgeSender`` reads a local ring and sends its frames; ``BridgeReceiver``,
on the far machine, writes them into a ring there. Together they keep the
link's policy:

- ``lossless``: credit-based flow control. The sender keeps at most
  ``window`` frames sent but not yet acknowledged; the receiver acknowledges
  a frame once it is committed to its ring, so a slow reader on the far side
  holds the receiver back, which holds the sender back, which (its local
  reader being lossless) holds the writer back. The unacknowledged frames
  are kept: a receiver that dies and comes back (its restart policy) says
  which frame it has last, and the sender sends the rest again. No frame is
  lost and none is written twice.
- ``latest``: the sender's local reader is a latest reader; it sends the
  newest frame whenever the window has room and skips the others
  (conflation): the writer is never held back.

The far end: every message from the receiver (acknowledgements, and one
every ``_HEARTBEAT_S`` when there is nothing to acknowledge) says it is
alive. A receiver silent for ``peer_timeout`` seconds (dead, or its network
stalled, or it stopped reading) is declared *down*: the sender keeps its
window, and discards the frames that come after it (counted, their ids
kept in ``status()['lost']``) so the writer is not held back forever. A
receiver that talks again (the same one, or a restarted one) ends it. The
frames lost while it was down are missing ids in the receiver's ring, so the
recorder on the far side puts them in its drop ledger (reason ``gap``).

End of stream: the sender sends ``end`` (the last frame's id) once its
input ended and every frame was acknowledged; the receiver closes its ring
after the frames before it, and everything downstream ends in its turn.

Wire format (ZMQ ROUTER on the sender, bound; DEALER on the receiver,
connected; every message is multipart):

- sender to receiver: ``[b"F", header, data]`` a frame (``header``: JSON
  ``frame_id``, ``timestamp_ns``), ``[b"W", header]`` welcome (JSON
  ``shape``, ``dtype``, ``policy``, ``session``), ``[b"E", last_id]`` end of
  stream, ``[b"H"]`` heartbeat;
- receiver to sender: ``[b"A", last_id]`` (the last frame id committed, an
  8-byte little-endian signed integer, -1 for none): acknowledgement and
  heartbeat at once; ``[b"B"]`` bye, in answer to ``end``.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
import zmq

from rigd._exceptions import EndOfStream, WouldBlock
from rigd.actors import Actor
from rigd.storage import ReaderPolicy

__all__ = ["BridgeReceiver", "BridgeSender", "fed_from_afar", "stop_order"]

log = logging.getLogger(__name__)

_HEARTBEAT_S = 0.25
_POLL_MS = 50
_ID = struct.Struct("<q")


def _check_timeouts(window: int, peer_timeout: float) -> None:
    if isinstance(window, bool) or not isinstance(window, int) or window < 1:
        raise ValueError(f"window must be an int >= 1 (frames in flight), got {window!r}")
    if isinstance(peer_timeout, bool) or not isinstance(peer_timeout, (int, float)):
        raise ValueError(f"peer_timeout must be a number of seconds, got {peer_timeout!r}")
    if peer_timeout <= 0:
        raise ValueError(f"peer_timeout must be positive, got {peer_timeout}")


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
        _check_timeouts(window, peer_timeout)
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
        self._listen(_POLL_MS if not self._room() else 0)
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
        if self.state == "up" and now - self._said > _HEARTBEAT_S:
            self._send([b"H"])

    def _room(self) -> bool:
        return self.state == "up" and len(self._unacked) < self.window and self._ended is None

    def _send_next(self) -> None:
        reader = self.inputs.frames
        try:
            frame = reader.get(timeout=_POLL_MS / 1000)
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
            frame = reader.get(timeout=_POLL_MS / 1000)
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
        if self.state == "up" and now - self._end_sent > _HEARTBEAT_S:
            self._send([b"E", _ID.pack(self._ended if self._ended is not None else -1)])
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
            if kind != b"A" or len(rest) != 1 or len(rest[0]) != _ID.size:
                continue
            (last_id,) = _ID.unpack(rest[0])
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


class ActorPlanLike(Protocol):
    """What ``stop_order`` needs of an actor's plan."""

    @property
    def name(self) -> str: ...
    @property
    def cls(self) -> type: ...
    @property
    def upstream(self) -> tuple[str, ...]: ...


_A = TypeVar("_A", bound=ActorPlanLike)


class BridgeReceiver(Actor):
    """Writes the frames a ``BridgeSender`` sends into its ``frames`` output.

    Args:
        address: the sender's address, e.g. ``tcp://camera-pc:5600``.
        shape: the frames' shape (the sender checks it on connecting).
        dtype: the frames' dtype.
        peer_timeout: seconds without a word from the sender after which
            ``status()['state']`` says ``down`` (it keeps waiting for it).

    Raises (``setup``, on the sender's welcome): ``ValueError`` when the
    sender's frames are not ``shape`` and ``dtype``.
    """

    output_names = ("frames",)
    place_options: ClassVar[dict[str, str]] = {"address": "zmq"}
    #: A clean stop waits for the sender's end of stream (see ``stop_order``).
    fed_from_afar: ClassVar[bool] = True

    def __init__(
        self,
        address: str = "tcp://127.0.0.1:5600",
        shape: list[int] | tuple[int, ...] = (512, 512),
        dtype: str = "uint16",
        peer_timeout: float = 10.0,
    ) -> None:
        self.shape, self.dtype = self._check(shape, dtype)
        _check_timeouts(1, peer_timeout)
        self.address = address
        self.peer_timeout = float(peer_timeout)
        self.frames_received = 0
        self.duplicates = 0
        self.state = "waiting"
        self.last_id = -1

    @staticmethod
    def _check(shape: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
        try:
            shape = tuple(int(n) for n in shape)
        except (TypeError, ValueError):
            raise ValueError(
                f"shape must be a list of sizes, e.g. [512, 512], got {shape!r}"
            ) from None
        if not shape or any(n <= 0 for n in shape):
            raise ValueError(f"shape must be positive sizes, got {list(shape)}")
        try:
            return shape, np.dtype(dtype)
        except TypeError:
            raise ValueError(f"dtype {dtype!r} is not a numpy dtype (e.g. uint16)") from None

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        shape, dtype = cls._check(options.get("shape", (512, 512)), options.get("dtype", "uint16"))
        return {"frames": (shape, dtype.str)}

    def setup(self) -> None:
        self._socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTING_ID, os.urandom(8))
        # Queue nothing for a sender not yet connected: acknowledgements are current or none.
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        self._socket.connect(self.address)
        previous = self.outputs.frames.previous
        if previous is not None:
            # Restarted: the ring holds frames up to this one; the sender sends the rest.
            self.last_id = previous[0]
        self._heard = time.monotonic()
        self._said = 0.0
        self._ack()

    def run_step(self) -> None:
        socket = self._socket
        now = time.monotonic()
        if now - self._said > _HEARTBEAT_S:
            self._ack()
        if self.state == "up" and now - self._heard > self.peer_timeout:
            log.warning(
                "bridge %s: no word from the sender for %g s", self.address, self.peer_timeout
            )
            self.state = "down"
        if not socket.poll(_POLL_MS, zmq.POLLIN):
            return
        parts = socket.recv_multipart(copy=False)
        self._heard = time.monotonic()
        if self.state != "up":
            self.state = "up"
        kind = parts[0].bytes
        if kind == b"F" and len(parts) == 3:
            self._write(json.loads(parts[1].bytes), parts[2])
        elif kind == b"W" and len(parts) == 2:
            self._welcome(json.loads(parts[1].bytes))
        elif kind == b"E" and len(parts) == 2:
            (end_id,) = _ID.unpack(parts[1].bytes)
            if end_id > self.last_id:
                log.warning(
                    "bridge %s: the stream ended at frame %d, the last one here is %d",
                    self.address,
                    end_id,
                    self.last_id,
                )
            try:
                self._socket.send_multipart([b"B"], zmq.NOBLOCK)
            except zmq.Again:
                pass  # the sender finishes anyway once its peer_timeout passes
            self.finish()

    def _welcome(self, welcome: dict[str, Any]) -> None:
        shape, dtype = tuple(welcome["shape"]), np.dtype(welcome["dtype"])
        if shape != self.shape or dtype != self.dtype:
            raise ValueError(
                f"bridge {self.address}: the sender's frames are {list(shape)} {dtype}, but this "
                f"receiver's options say {list(self.shape)} {self.dtype}; make them match"
            )

    def _write(self, header: dict[str, Any], data: zmq.Frame) -> None:
        frame_id = int(header["frame_id"])
        if frame_id <= self.last_id:
            self.duplicates += 1  # sent again after a reconnect, and already here
            self._ack()
            return
        if len(data) != self.dtype.itemsize * int(np.prod(self.shape)):
            raise ValueError(
                f"bridge {self.address}: frame {frame_id} has {len(data)} bytes, not a "
                f"{list(self.shape)} {self.dtype} frame; the sender's link carries other frames"
            )
        array = np.frombuffer(data.buffer, self.dtype).reshape(self.shape)
        writer = self.outputs.frames
        while True:
            try:
                writer.put(array, frame_id, int(header["timestamp_ns"]), timeout=_HEARTBEAT_S)
                break
            except (TimeoutError, WouldBlock):
                # Held back by a reader downstream: say so to the sender (alive, no credit).
                self._ack()
                if self.stopping:
                    return
        self.last_id = frame_id
        self.frames_received += 1
        self._ack()

    def _ack(self) -> None:
        try:
            self._socket.send_multipart([b"A", _ID.pack(self.last_id)], zmq.NOBLOCK)
        except zmq.Again:
            return  # not connected yet
        self._said = time.monotonic()

    def stop(self) -> None:
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close(linger=0)

    def status(self) -> dict[str, Any]:
        """The link's state (``waiting``, ``up``, ``down``) and counters."""
        return {
            "state": self.state,
            "address": self.address,
            "frames_received": self.frames_received,
            "duplicates": self.duplicates,
            "last_id": self.last_id,
        }


def fed_from_afar(cls: type) -> bool:
    """Whether actors of ``cls`` have no input here but a stream from elsewhere
    (a bridge receiver): a clean stop waits for that stream's end, as for an input."""
    return bool(getattr(cls, "fed_from_afar", False))


def stop_order(actors: Sequence[_A]) -> list[_A]:
    """The order a clean stop takes: ``actors`` (sources first) with the
    bridge receivers, and everything downstream of them, moved last.

    The senders then end their streams (their sources stopped) before the
    receivers are waited for, and the receivers drain before what reads them.
    """
    fed: set[str] = set()
    for actor in actors:
        if fed_from_afar(actor.cls) or any(name in fed for name in actor.upstream):
            fed.add(actor.name)
    return [a for a in actors if a.name not in fed] + [a for a in actors if a.name in fed]
