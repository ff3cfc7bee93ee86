"""``BridgeReceiver``: the far end of a bridge (see ``rigd.pipeline._bridge``).

A frame's data is received straight into its ring slot, after its header
said which frame it is: the receiver speaks ZMQ's wire protocol itself
(``rigd.pipeline._zmtp``), so the kernel copies the bytes into the slot and
nothing copies them again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from rigd._exceptions import RigdError, WouldBlock
from rigd.actors import Actor, add_fatal_error
from rigd.pipeline._bridge_wire import FRAME, HEARTBEAT_S, ID, POLL_MS, check_timeouts
from rigd.pipeline._frame_spec import frame_spec
from rigd.pipeline._zmtp import ZmtpDealer, endpoint

__all__ = ["BridgeReceiver"]

log = logging.getLogger(__name__)


#: Messages handled in one step at most.
_BATCH = 16
#: How long the receiver waits for the next frame before it acknowledges the
#: ones it has when fewer than ``_ack_every`` are owed (the stream paused or ended).
_ACK_DELAY_MS = 2


class _WrongSizeError(RigdError):
    """A frame's data part is not one frame's bytes (its size, or more parts follow)."""


class _BridgeRefusedError(RigdError, ValueError):
    """This receiver cannot take the sender's stream (other frames, or the sender
    feeds another receiver): no later step could, so the actor gives up at once
    and is not restarted (``add_fatal_error``); its run fails with the reason."""


add_fatal_error(_BridgeRefusedError)


class BridgeReceiver(Actor):
    """Writes the frames a ``BridgeSender`` sends into its ``frames`` output.

    Args:
        address: the sender's address, e.g. ``tcp://camera-pc:5600``.
        shape: the frames' shape (the sender checks it on connecting).
        dtype: the frames' dtype.
        peer_timeout: seconds without a word from the sender after which
            ``status()['state']`` says ``down`` (it keeps waiting for it).

    Raises: ``ValueError`` for a bad ``shape``, ``dtype`` or ``peer_timeout``,
    or an ``address`` that is not ``tcp://HOST:PORT`` or ``ipc://PATH``; and
    (``run_step``, on the sender's welcome) when the sender's frames are not
    ``shape`` and ``dtype``.

    The wire is ZMQ's (a DEALER connected to the sender's ROUTER, ZMTP 3.0),
    read by ``rigd.pipeline._zmtp`` so that a frame's bytes go from the
    socket straight into the ring slot.
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
        endpoint(address)  # ValueError: not an address to connect to
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
        # Checked when the file is planned: a bad option names its line.
        check_timeouts(1, options.get("peer_timeout", 10.0))
        endpoint(options.get("address", "tcp://127.0.0.1:5600"))
        return {"frames": (shape, dtype.str)}

    def setup(self) -> None:
        self._link = ZmtpDealer(self.address, stall_s=self.peer_timeout)
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
        self._told: str | None = None  # the connection problem logged last
        self._welcomed = False

    def run_step(self) -> None:
        link = self._link
        if not link.connected:
            self._connect()
        now = time.monotonic()
        if now - self._said > HEARTBEAT_S:
            self._ack()
        if self.state == "up" and now - self._heard > self.peer_timeout:
            log.warning(
                "bridge %s: no word from the sender for %g s", self.address, self.peer_timeout
            )
            self.state = "down"
        try:
            if not link.poll(_ACK_DELAY_MS if self._owed else POLL_MS):
                if not link.connected:
                    time.sleep(POLL_MS / 1000)  # no connection yet: wait before trying again
                elif self._owed:
                    self._ack()  # no frame came on: acknowledge the ones here
                return
            self._heard = time.monotonic()
            if self.state != "up":
                self.state = "up"
            # What is here, up to a batch. Frames are acknowledged every
            # ``_ack_every`` (``_write``), the rest once the stream pauses (above):
            # a flat-out stream costs the two ends one small message per half window.
            for _ in range(_BATCH):
                self._handle()
                if self._done or not link.poll(0):
                    break
        except ConnectionError as exc:
            # Closed, or stalled inside a message: a new connection is a new
            # peer to the sender, which sends again what was not acknowledged.
            log.warning("bridge %s: %s; connecting again", self.address, exc)

    def _connect(self) -> None:
        link = self._link
        if link.connect():
            self._told = None
            self._ack()  # the sender welcomes a peer once it talks
        elif link.problem and link.problem != self._told:
            self._told = link.problem
            log.warning(
                "bridge %s: no sender there yet (%s); trying again every 0.1 s",
                self.address,
                link.problem,
            )

    def _handle(self) -> None:
        """One message from the sender."""
        link = self._link
        first = link.recv()
        more = link.more
        if more and len(first) == FRAME.size and first[:1] == b"F":
            _, frame_id, timestamp_ns = FRAME.unpack(first)
            self._write(frame_id, timestamp_ns)
            return
        parts = [first]
        while more:
            parts.append(link.recv())  # the rest of the message
            more = link.more
        kind = first
        if kind == b"W" and len(parts) == 2:
            self._welcome(json.loads(parts[1]))
        elif kind == b"R" and len(parts) == 2:
            self._refused(parts[1].decode(errors="replace"))
        elif kind == b"E" and len(parts) == 2:
            (end_id,) = ID.unpack(parts[1])
            if end_id > self.last_id:
                log.warning(
                    "bridge %s: the stream ended at frame %d, the last one here is %d",
                    self.address,
                    end_id,
                    self.last_id,
                )
            # The sender finishes anyway once its peer_timeout passes, if this is refused.
            link.send([b"B"])
            self._done = True
            self.finish()

    def _refused(self, reason: str) -> None:
        if not self._welcomed:
            self._link.close()
            raise _BridgeRefusedError(f"bridge {self.address}: refused: {reason}")
        # Welcomed before: this is a new connection of the same receiver, which
        # the sender takes once it has seen the old one close. Try again.
        log.warning("bridge %s: refused (%s); connecting again", self.address, reason)
        self._link.close()

    def _welcome(self, welcome: dict[str, Any]) -> None:
        shape, dtype = tuple(welcome["shape"]), np.dtype(welcome["dtype"])
        if shape != self.shape or dtype != self.dtype:
            self._link.close()  # the sender then declares this receiver down
            raise _BridgeRefusedError(
                f"bridge {self.address}: the sender's frames are {list(shape)} {dtype}, but this "
                f"receiver's options say {list(self.shape)} {self.dtype}; make them match"
            )
        self._welcomed = True
        window = welcome.get("window", 1)
        self._ack_every = max(1, window // 2) if isinstance(window, int) else 1

    def _write(self, frame_id: int, timestamp_ns: int) -> None:
        """The frame whose data is the message's next (last) part: into the next slot."""
        link = self._link
        if frame_id <= self.last_id:
            link.skip()
            self.duplicates += 1  # sent again after a reconnect, and already here
            self._owed += 1
            return
        writer = self.outputs.frames
        while True:
            try:
                with writer.slot(frame_id, timestamp_ns, timeout=HEARTBEAT_S) as view:
                    size = link.recv_into(memoryview(view).cast("B"))
                    if size != view.nbytes or link.more:
                        raise _WrongSizeError(size)
                break
            except (TimeoutError, WouldBlock):
                # Held back by a reader downstream: say so to the sender (alive, no credit).
                self._ack()
                if self.stopping:
                    link.skip()  # the frame's data: not for this ring now
                    return
            except _WrongSizeError as exc:
                self._link.close()
                raise _BridgeRefusedError(
                    f"bridge {self.address}: frame {frame_id} has {exc.args[0]} bytes, not a "
                    f"{list(self.shape)} {self.dtype} frame; the sender's link carries other frames"
                ) from None
        self.last_id = frame_id
        self.frames_received += 1
        self._owed += 1
        if self._owed >= self._ack_every:
            self._ack()

    def _ack(self) -> None:
        if self._link.send([b"A", ID.pack(self.last_id)]):
            self._said = time.monotonic()
            self._owed = 0

    def stop(self) -> None:
        link = getattr(self, "_link", None)
        if link is not None:
            link.close()

    def status(self) -> dict[str, Any]:
        """The link's state (``waiting``, ``up``, ``down``) and counters."""
        return {
            "state": self.state,
            "address": self.address,
            "frames_received": self.frames_received,
            "duplicates": self.duplicates,
            "last_id": self.last_id,
        }
