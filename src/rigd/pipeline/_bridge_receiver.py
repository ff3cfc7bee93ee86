"""``BridgeReceiver``: the far end of a bridge (see ``rigd.pipeline._bridge``).

A frame's data is received straight into its ring slot (``recv_into``, one
copy out of ZMQ's message), after its header said which frame it is.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import zmq

from rigd._exceptions import RigdError, WouldBlock
from rigd.actors import Actor
from rigd.pipeline._bridge_wire import FRAME, HEARTBEAT_S, ID, POLL_MS, check_timeouts
from rigd.pipeline._frame_spec import frame_spec
from rigd.pipeline._heap import keep_heap_for

__all__ = ["BridgeReceiver"]

log = logging.getLogger(__name__)


#: Messages handled in one step at most.
_BATCH = 16
#: How long the receiver waits for the next frame before it acknowledges the
#: ones it has when fewer than ``_ack_every`` are owed (the stream paused or ended).
_ACK_DELAY_MS = 2
#: Bytes of frames libzmq decodes ahead of the receiver's writer, about.
_QUEUED_BYTES = 32 * 1024 * 1024


class _WrongSizeError(RigdError):
    """A frame's data part is not one frame's bytes (its size, or more parts follow)."""


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
        check_timeouts(1, peer_timeout)
        self.address = address
        self.peer_timeout = float(peer_timeout)
        self.frames_received = 0
        self.duplicates = 0
        self.state = "waiting"
        self.last_id = -1

    @staticmethod
    def _check(shape: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
        return frame_spec(shape, dtype)

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        shape, dtype = cls._check(options.get("shape", (512, 512)), options.get("dtype", "uint16"))
        return {"frames": (shape, dtype.str)}

    def setup(self) -> None:
        # Each frame is a message libzmq allocates: keep its memory for the next.
        nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self._queued = max(4, _QUEUED_BYTES // max(nbytes, 1))
        keep_heap_for(max(nbytes, 1), keep_frames=self._queued + 4)
        self._socket: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.ROUTING_ID, os.urandom(8))
        # Queue nothing for a sender not yet connected: acknowledgements are current or none.
        self._socket.setsockopt(zmq.IMMEDIATE, 1)
        # Frames decoded ahead of the writer: at most about ``_QUEUED_BYTES`` (the
        # rest waits in the kernel's socket buffer), so their memory stays in one
        # heap that ``keep_heap_for`` keeps, instead of heaps made and unmapped.
        self._socket.setsockopt(zmq.RCVHWM, self._queued)
        self._socket.connect(self.address)
        self._poll_in: list[tuple[Any, int]] = [(self._socket, zmq.POLLIN)]
        previous = self.outputs.frames.previous
        if previous is not None:
            # Restarted: the ring holds frames up to this one; the sender sends the rest.
            self.last_id = previous[0]
        self._heard = time.monotonic()
        self._said = 0.0
        self._owed = 0  # frames written and not acknowledged yet
        # One acknowledgement per half of the sender's window (its welcome says).
        self._ack_every = 1
        self._done = False
        self._ack()

    def run_step(self) -> None:
        socket = self._socket
        now = time.monotonic()
        if now - self._said > HEARTBEAT_S:
            self._ack()
        if self.state == "up" and now - self._heard > self.peer_timeout:
            log.warning(
                "bridge %s: no word from the sender for %g s", self.address, self.peer_timeout
            )
            self.state = "down"
        if not zmq.zmq_poll(self._poll_in, _ACK_DELAY_MS if self._owed else POLL_MS):
            if self._owed:
                self._ack()  # no frame came on: acknowledge the ones here
            return
        self._heard = time.monotonic()
        if self.state != "up":
            self.state = "up"
        # What is queued, up to a batch. Frames are acknowledged every
        # ``_ack_every`` (``_write``), the rest once the stream pauses (above):
        # a flat-out stream costs the two ends one small message per half window.
        for _ in range(_BATCH):
            self._handle()
            if self._done or not int(socket.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
                break

    def _handle(self) -> None:
        """One message from the sender."""
        socket = self._socket
        first = socket.recv()
        more = socket.getsockopt(zmq.RCVMORE)
        if more and len(first) == FRAME.size and first[:1] == b"F":
            _, frame_id, timestamp_ns = FRAME.unpack(first)
            self._write(frame_id, timestamp_ns)
            return
        parts = [first]
        while more:
            parts.append(socket.recv())  # the rest of a message (a ZMQ message comes whole)
            more = socket.getsockopt(zmq.RCVMORE)
        kind = first
        if kind == b"W" and len(parts) == 2:
            self._welcome(json.loads(parts[1]))
        elif kind == b"E" and len(parts) == 2:
            (end_id,) = ID.unpack(parts[1])
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
            self._done = True
            self.finish()

    def _welcome(self, welcome: dict[str, Any]) -> None:
        shape, dtype = tuple(welcome["shape"]), np.dtype(welcome["dtype"])
        if shape != self.shape or dtype != self.dtype:
            raise ValueError(
                f"bridge {self.address}: the sender's frames are {list(shape)} {dtype}, but this "
                f"receiver's options say {list(self.shape)} {self.dtype}; make them match"
            )
        window = welcome.get("window", 1)
        self._ack_every = max(1, window // 2) if isinstance(window, int) else 1

    def _write(self, frame_id: int, timestamp_ns: int) -> None:
        """The frame whose data is the message's next (last) part: into the next slot."""
        socket = self._socket
        if frame_id <= self.last_id:
            socket.recv(copy=False)
            self.duplicates += 1  # sent again after a reconnect, and already here
            self._owed += 1
            return
        writer = self.outputs.frames
        while True:
            try:
                with writer.slot(frame_id, timestamp_ns, timeout=HEARTBEAT_S) as view:
                    size = socket.recv_into(view)
                    if size != view.nbytes or socket.getsockopt(zmq.RCVMORE):
                        raise _WrongSizeError(size)
                break
            except (TimeoutError, WouldBlock):
                # Held back by a reader downstream: say so to the sender (alive, no credit).
                self._ack()
                if self.stopping:
                    socket.recv(copy=False)  # the frame's data: not for this ring now
                    return
            except _WrongSizeError as exc:
                while socket.getsockopt(zmq.RCVMORE):
                    socket.recv(copy=False)
                raise ValueError(
                    f"bridge {self.address}: frame {frame_id} has {exc.args[0]} bytes, not a "
                    f"{list(self.shape)} {self.dtype} frame; the sender's link carries other frames"
                ) from None
        self.last_id = frame_id
        self.frames_received += 1
        self._owed += 1
        if self._owed >= self._ack_every:
            self._ack()

    def _ack(self) -> None:
        try:
            self._socket.send_multipart([b"A", ID.pack(self.last_id)], zmq.NOBLOCK)
        except zmq.Again:
            return  # not connected yet
        self._said = time.monotonic()
        self._owed = 0

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
