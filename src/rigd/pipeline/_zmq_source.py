"""ZmqSource: frames received over ZMQ (another machine's publisher) as a source.

The framing is ``ZmqPublisher``'s, so one rigd publishes and another records;
and a plain format any tool can send (improv's actors, a script, LabVIEW):

- rigd's: ``[topic, header, data]`` (what ``ZmqPublisher`` sends);
- plain: ``[header, data]``;
- end of stream: ``[header]`` or ``[topic, header]`` whose header is ``{"end": true}``.

``header`` is a JSON object: ``shape`` (list of ints) and ``dtype`` (numpy's
name or ``str``, e.g. ``"uint16"`` or ``"<u2"``), required; ``frame_id``
(int, increasing; default: a count from 0) and ``timestamp_ns`` (int, ns
since the epoch; or ``timestamp``, float seconds; default: the time it
arrived), optional. ``data`` is the frame's bytes in C order, exactly
``prod(shape) * itemsize`` of them.

Frame ids (the ``frame_ids`` option): a sender's ids are its own. improv,
a script or another rigd (a ``ZmqPublisher`` on a ``latest`` link sends the
frames it has time for) may number every other frame, or start at 10, so by
default (``sender``) the ids are recorded as sent and the ids between are
not lost frames: the ring says so (``RingWriter.own_ids``) and the recorder
ledgers no ``gap``. ``consecutive`` is for a sender that numbers every
frame it sends 1 apart: an id skipped is a frame lost on the way (a SUB
socket's high-water mark), counted (``frames_lost``) and ledgered ``gap``.
``count`` numbers frames as they arrive (0, 1, 2, ...) and ignores the
sender's ids (a sender whose ids restart, or are not increasing).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import zmq

from rigd._exceptions import OptionValueError, RigdError
from rigd.actors import Actor
from rigd.pipeline._frame_spec import frame_spec
from rigd.pipeline._zmq_address import address_refused
from rigd.storage import DropReason

__all__ = ["ZmqSource"]

log = logging.getLogger(__name__)

_POLL_MS = 100
_PUT_WAIT_S = 0.25
_SOCKETS = {"sub": zmq.SUB, "pull": zmq.PULL}
FRAME_IDS = ("sender", "consecutive", "count")
#: At most one log line this often for messages rejected or frames lost.
_LOG_EVERY_S = 10.0


class _RejectedError(RigdError):
    """A message that is not a frame of this source (the reason is the text)."""


class ZmqSource(Actor):
    """Frames from a ZMQ socket, written into ``frames`` (see the module for the format).

    Args:
        address: e.g. ``tcp://rig-pc:5555``.
        shape: the frames' shape; frames of any other are rejected.
        dtype: the frames' dtype; likewise.
        socket: ``sub`` (to a PUB, e.g. ``ZmqPublisher``; lossy by ZMQ's
            design: a slow subscriber misses messages) or ``pull`` (to a
            PUSH: the sender is held back instead).
        bind: bind ``address`` instead of connecting to it.
        topic: ``sub`` only: the topic prefix to subscribe to (``""``: all).
        n_frames: end after this many frames (``None``: at the sender's end
            message, or when stopped).
        frame_ids: ``sender`` (the sender's ids, as sent; ids it skips are not
            frames lost), ``consecutive`` (the sender's ids, 1 apart: a skip
            is frames lost, in the drop ledger as ``gap``) or ``count``
            (renumbered 0, 1, 2, ... as they arrive). See the module.

    A message that is not a frame of this shape and dtype, or whose
    ``frame_id`` does not increase, is rejected: counted, its reason in
    ``status()``, logged (the first, then at most one line per 10 s with the
    count); the source goes on. The counts are in the run's summary
    (``report_line``, ``RunReport.actor_lines``).

    Raises:
        ValueError: an option is not one of its values (the message names it).
        OptionValueError: at setup, ``address`` refused by ZMQ (a port taken, an
            address not of this machine, no such transport); one line naming it
            and the fix.
    """

    output_names = ("frames",)
    place_options: ClassVar[dict[str, str]] = {"address": "zmq"}

    def __init__(
        self,
        address: str = "tcp://127.0.0.1:5555",
        shape: list[int] | tuple[int, ...] = (512, 512),
        dtype: str = "uint16",
        socket: str = "sub",
        bind: bool = False,
        topic: str = "",
        n_frames: int | None = None,
        frame_ids: str = "sender",
    ) -> None:
        self.shape, self.dtype = self._check(shape, dtype)
        if socket not in _SOCKETS:
            raise ValueError(f"socket must be one of {sorted(_SOCKETS)}, got {socket!r}")
        if n_frames is not None and (
            isinstance(n_frames, bool) or not isinstance(n_frames, int) or n_frames < 0
        ):
            raise ValueError(f"n_frames must be an int >= 0 (or null), got {n_frames!r}")
        if frame_ids not in FRAME_IDS:
            raise ValueError(
                f"frame_ids must be one of {list(FRAME_IDS)} (sender: the sender's ids, "
                f"gaps not lost; consecutive: gaps are lost frames; count: renumbered), "
                f"got {frame_ids!r}"
            )
        self.frame_ids = frame_ids
        self.frames_lost = 0
        self._log_at = {"rejected": 0.0, "lost": 0.0}
        self.address = address
        self.socket_type = socket
        self.bind = bool(bind)
        self.topic = topic
        self.n_frames = n_frames
        self.frames_received = 0
        self.rejected = 0
        self.last_rejection: str | None = None
        self._last_id = -1

    @staticmethod
    def _check(shape: Any, dtype: Any) -> tuple[tuple[int, ...], np.dtype[Any]]:
        shape, dt = frame_spec(shape, dtype)
        if dt.hasobject:
            raise ValueError(f"dtype must be a plain numeric dtype, got {dt}")
        return shape, dt

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        shape, dtype = cls._check(options.get("shape", (512, 512)), options.get("dtype", "uint16"))
        return {"frames": (shape, dtype.str)}

    def setup(self) -> None:
        self._socket: zmq.Socket[bytes] = zmq.Context.instance().socket(_SOCKETS[self.socket_type])
        self._socket.setsockopt(zmq.LINGER, 0)
        if self.socket_type == "sub":
            self._socket.setsockopt(zmq.SUBSCRIBE, self.topic.encode())
        try:
            if self.bind:
                self._socket.bind(self.address)
            else:
                self._socket.connect(self.address)
        except zmq.ZMQError as exc:
            self._socket.close()
            raise OptionValueError(
                "address", address_refused("ZmqSource", self.address, self.bind, exc)
            ) from None
        previous = self.outputs.frames.previous
        if previous is not None:
            self._last_id = previous[0]  # restarted: ids go on increasing
        if self.frame_ids == "sender":
            self.outputs.frames.own_ids()  # skipped ids are not frames lost
        self._nbytes = int(np.prod(self.shape)) * self.dtype.itemsize

    def run_step(self) -> None:
        if self.n_frames is not None and self.frames_received >= self.n_frames:
            self.finish()
            return
        if not self._socket.poll(_POLL_MS, zmq.POLLIN):
            return
        parts = self._socket.recv_multipart(copy=False)
        try:
            header, data = self._parse(parts)
        except _RejectedError as exc:
            self._reject(str(exc), parts)
            return
        if header.get("end") is True:
            self.finish()
            return
        assert data is not None
        try:
            frame_id, timestamp_ns = self._stamp(header)
        except _RejectedError as exc:
            self._reject(str(exc), parts)
            return
        array = np.frombuffer(data.buffer, self.dtype).reshape(self.shape)
        writer = self.outputs.frames
        while True:
            try:
                writer.put(array, frame_id, timestamp_ns, timeout=_PUT_WAIT_S)
                break
            except TimeoutError:
                if self.stopping:
                    return
        if (
            self.frame_ids == "consecutive"
            and self.frames_received
            and frame_id > self._last_id + 1
        ):
            self._lost(frame_id - self._last_id - 1)
        self._last_id = frame_id
        self.frames_received += 1

    def _parse(self, parts: list[zmq.Frame]) -> tuple[dict[str, Any], zmq.Frame | None]:
        if len(parts) not in (1, 2, 3):
            raise _RejectedError(f"a message of {len(parts)} parts (a frame has 2 or 3)")
        # [header] or [header, data], or with a topic first.
        if len(parts) == 3 or (len(parts) == 2 and not _looks_like_json(parts[0])):
            parts = parts[1:]
        try:
            header = json.loads(parts[0].bytes)
        except (UnicodeDecodeError, ValueError):
            raise _RejectedError("its header is not JSON") from None
        if not isinstance(header, dict):
            raise _RejectedError(f"its header is {type(header).__name__}, not a JSON object")
        if header.get("end") is True:
            return header, None
        if len(parts) != 2:
            raise _RejectedError("a header with no data part (and not {'end': true})")
        try:
            shape = tuple(int(n) for n in header["shape"])
            dtype = np.dtype(header["dtype"])
        except (KeyError, TypeError, ValueError):
            raise _RejectedError("its header lacks a valid shape or dtype") from None
        if shape != self.shape or dtype != self.dtype:
            raise _RejectedError(
                f"a {list(shape)} {dtype} frame; this source takes {list(self.shape)} {self.dtype}"
            )
        if len(parts[1]) != self._nbytes:
            raise _RejectedError(f"{len(parts[1])} bytes of data; its header says {self._nbytes}")
        return header, parts[1]

    def _stamp(self, header: dict[str, Any]) -> tuple[int, int]:
        if self.frame_ids == "count":
            frame_id = self._last_id + 1
        else:
            frame_id = header.get("frame_id", self._last_id + 1)
        if isinstance(frame_id, bool) or not isinstance(frame_id, int):
            raise _RejectedError(f"frame_id {frame_id!r} is not an integer")
        if frame_id <= self._last_id:
            raise _RejectedError(f"frame_id {frame_id} after {self._last_id}: ids must increase")
        if "timestamp_ns" in header:
            timestamp_ns = header["timestamp_ns"]
            if isinstance(timestamp_ns, bool) or not isinstance(timestamp_ns, int):
                raise _RejectedError(f"timestamp_ns {timestamp_ns!r} is not an integer")
        elif "timestamp" in header:
            seconds = header["timestamp"]
            if not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
                raise _RejectedError(f"timestamp {seconds!r} is not a number of seconds")
            timestamp_ns = int(seconds * 1e9)
        else:
            timestamp_ns = time.time_ns()
        return frame_id, timestamp_ns

    def _reject(self, reason: str, parts: list[zmq.Frame]) -> None:
        self.rejected += 1
        self.last_rejection = reason
        if self.frame_ids == "consecutive":
            # The rejected frame's id, if its header gives one: in the ledger as
            # ``rejected`` (not a ``gap``, nor a frame lost on the way).
            frame_id = _header_frame_id(parts)
            if frame_id is not None and frame_id > self._last_id:
                if self.frames_received and frame_id > self._last_id + 1:
                    self._lost(frame_id - self._last_id - 1)
                self.outputs.frames.note_dropped(frame_id, 1, DropReason.REJECTED)
                self._last_id = frame_id
        if self._due("rejected"):
            log.warning(
                "ZmqSource %s: rejected a message (%d so far; at most one line per %g s): %s",
                self.address,
                self.rejected,
                _LOG_EVERY_S,
                reason,
            )

    def _lost(self, count: int) -> None:
        self.frames_lost += count
        if self._due("lost"):
            log.warning(
                "ZmqSource %s: frame ids skip: %d frame(s) lost on the way so far "
                "(frame_ids: consecutive; at most one line per %g s)",
                self.address,
                self.frames_lost,
                _LOG_EVERY_S,
            )

    def _due(self, what: str) -> bool:
        now = time.monotonic()
        if now < self._log_at[what]:
            return False
        self._log_at[what] = now + _LOG_EVERY_S
        return True

    def stop(self) -> None:
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close(linger=0)

    def status(self) -> dict[str, Any]:
        """Frames received, frames lost (``frame_ids: consecutive``; else 0),
        messages rejected with the last reason, the address and ``frame_ids``."""
        return {
            "frames_received": self.frames_received,
            "frames_lost": self.frames_lost,
            "rejected": self.rejected,
            "last_rejection": self.last_rejection,
            "address": self.address,
            "frame_ids": self.frame_ids,
        }

    def report_line(self) -> str:
        """The run summary's line: frames received, lost and messages rejected."""
        line = f"{self.frames_received} frame(s) received from {self.address}"
        if self.frame_ids == "consecutive":
            line += f", {self.frames_lost} lost on the way"
        line += f", {self.rejected} message(s) rejected"
        if self.last_rejection:
            line += f" (last: {self.last_rejection})"
        return line


def _looks_like_json(part: zmq.Frame) -> bool:
    return part.bytes[:1] == b"{"


def _header_frame_id(parts: list[zmq.Frame]) -> int | None:
    """The ``frame_id`` a rejected message's JSON header gives, or None."""
    for part in parts[:2]:
        try:
            header = json.loads(part.bytes)
        except (UnicodeDecodeError, ValueError):
            continue
        if isinstance(header, dict):
            frame_id = header.get("frame_id")
            if isinstance(frame_id, int) and not isinstance(frame_id, bool) and frame_id >= 0:
                return frame_id
            return None
    return None
