"""A ZMQ DEALER connection that reads a message part straight into a buffer.

libzmq decodes every message into memory it allocates, so a frame received
with pyzmq is copied once more, from that message into its ring slot (8 MB
a frame at 2048x2048 uint16, about 1.3 ms of CPU here). This module speaks
ZMTP 3.0 (RFC 23, https://rfc.zeromq.org/spec/23/), the wire protocol of
ZMQ's tcp and ipc transports, over a plain socket, so the kernel copies a
frame's bytes straight into the slot (``recv_into``): one copy, as raw
pyzmq PUSH/PULL costs.

Only what a bridge receiver needs: the DEALER side of a connection to one
ROUTER (``BridgeSender``, libzmq), the NULL security mechanism, reconnection
every 100 ms as libzmq does (with a new routing id, so the ROUTER sees a new
peer), ``PING`` answered with ``PONG``. Sends never block: parts the kernel
does not take at once wait in a small queue, and a message that does not fit
in it is refused (``False``), as a full ZMQ queue refuses with ``EAGAIN``.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import struct
import time
from collections.abc import Sequence

__all__ = ["ZmtpDealer", "endpoint"]

#: Signature (0xFF, 8 bytes of padding, 0x7F), version 3.0, mechanism NULL,
#: as-server 0 and the filler: RFC 23's greeting, 64 bytes.
_GREETING = b"\xff" + bytes(8) + b"\x7f" + b"\x03\x00" + b"NULL".ljust(20, b"\0") + bytes(32)
_SIZE = struct.Struct(">Q")
_VALUE_SIZE = struct.Struct(">I")
_MORE, _LONG, _COMMAND = 0x01, 0x02, 0x04
#: Seconds between connection attempts (libzmq's ``ZMQ_RECONNECT_IVL`` default).
_RECONNECT_S = 0.1
#: Seconds a connection attempt and its greeting may take.
_HANDSHAKE_S = 1.0
#: Bytes read at once when the next thing is a part's head: the heads of a
#: frame message (28 bytes) and a little of its data, or a few small messages.
_HEAD_READ = 4096
#: Bytes of a part ``recv`` returns (or a command) at most.
_MAX_PART = 1024 * 1024
#: Unsent bytes at most; a message past them is refused.
_MAX_UNSENT = 64 * 1024


def endpoint(address: str) -> tuple[int, str | tuple[str, int]]:
    """The socket family and address of a ZMQ ``tcp://HOST:PORT`` or ``ipc://PATH``
    (``AF_INET`` stands for tcp: the host may be a name, IPv4 or IPv6).

    Raises: ``ValueError`` naming the address and the forms accepted."""
    scheme, _, rest = address.partition("://") if isinstance(address, str) else ("", "", "")
    if scheme == "ipc" and rest:
        return socket.AF_UNIX, "\0" + rest[1:] if rest.startswith("@") else rest
    host, _, port = rest.rpartition(":")
    if scheme == "tcp" and host and port.isdigit() and 0 < int(port) < 65536:
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if host != "*":
            return socket.AF_INET, (host, int(port))
    raise ValueError(
        f"{address!r} is not an address to connect to; give tcp://HOST:PORT "
        "(e.g. tcp://camera-pc:5600) or ipc://PATH"
    )


def _command(name: bytes, data: bytes = b"") -> bytes:
    body = bytes([len(name)]) + name + data
    if len(body) > 255:
        return bytes([_COMMAND | _LONG]) + _SIZE.pack(len(body)) + body
    return bytes([_COMMAND, len(body)]) + body


def _properties(data: bytes) -> dict[bytes, bytes]:
    """A ``READY`` command's metadata: name (1-byte size) and value (4-byte size)."""
    out: dict[bytes, bytes] = {}
    at = 0
    while at < len(data):
        size = data[at]
        name = data[at + 1 : at + 1 + size]
        at += 1 + size
        (value_size,) = _VALUE_SIZE.unpack_from(data, at)
        out[name.lower()] = data[at + 4 : at + 4 + value_size]
        at += 4 + value_size
    return out


class ZmtpDealer:
    """One ZMTP 3.0 DEALER connection to a ROUTER at ``address``.

    Args:
        address: ``tcp://HOST:PORT`` or ``ipc://PATH`` (``ipc://@NAME``: Linux's
            abstract namespace), as in ZMQ.
        stall_s: seconds a message may take to arrive once its first byte
            came; past them the connection is closed (``ConnectionError``).

    Raises: ``ValueError`` for an address it cannot connect to.

    Reading a message: ``recv()`` returns its next part (``more`` then says
    whether another follows); ``recv_into(buffer)`` puts the next part
    straight into ``buffer`` when the part is ``len(buffer)`` bytes
    (``skip()`` drops a part). Parts are not checked against the ROUTER's
    routing: it sends this connection only what is addressed to it.
    """

    def __init__(self, address: str, stall_s: float = 10.0) -> None:
        self.family, self.sockaddr = endpoint(address)
        self.address = address
        self.stall_s = stall_s
        #: Whether the part read last has another after it (ZMQ's ``RCVMORE``).
        self.more = False
        #: Why the last connection attempt failed, or None.
        self.problem: str | None = None
        self._sock: socket.socket | None = None
        self._poller = select.poll()
        self._next_try = 0.0
        self._buf = bytearray(_HEAD_READ * 16)
        self._view = memoryview(self._buf)
        self._start = self._end = 0  # the unread bytes: self._buf[_start:_end]
        self._unsent = bytearray()

    # -- the connection ---------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> bool:
        """Connect and greet the ROUTER, if not connected and it is time to try
        again; whether a new connection was made now (``problem`` says why not)."""
        now = time.monotonic()
        if self._sock is not None or now < self._next_try:
            return False
        self._next_try = now + _RECONNECT_S
        try:
            sock = self._open()
        except socket.gaierror as exc:
            self.problem = f"cannot resolve the host of {self.address} ({exc.strerror})"
            return False
        except OSError as exc:
            self.problem = str(exc) or type(exc).__name__
            return False
        try:
            # A new routing id each time: the ROUTER welcomes a new peer (and
            # sends again what it has not been told was received).
            identity = _VALUE_SIZE.pack(8) + os.urandom(8)
            ready = b"\x0bSocket-Type" + _VALUE_SIZE.pack(6) + b"DEALER" + b"\x08Identity"
            sock.sendall(_GREETING + _command(b"READY", ready + identity))
            self._check_greeting(self._read_exactly(sock, len(_GREETING)))
            self._check_ready(sock)
        except TimeoutError:
            sock.close()
            self.problem = (
                f"connected, but no ZMQ greeting came within {_HANDSHAKE_S:g} s: not a ZMQ "
                "socket (a bridge sender's ROUTER)?"
            )
            return False
        except (OSError, ValueError) as exc:
            sock.close()
            self.problem = str(exc) or type(exc).__name__
            return False
        # Blocking, each wait bounded by the stall time in the kernel: a part's
        # bytes are read in one call (``MSG_WAITALL``) as they come, with no
        # wake-up of this process per packet; sends never wait (``MSG_DONTWAIT``).
        sock.settimeout(None)
        seconds = max(self.stall_s, 0.001)
        timeval = struct.pack("ll", int(seconds), int(seconds % 1 * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
        self._sock = sock
        self._poller.register(sock, select.POLLIN)
        self._start = self._end = 0
        self._unsent.clear()
        self.more = False
        self.problem = None
        return True

    def _open(self) -> socket.socket:
        if self.family == socket.AF_UNIX:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(_HANDSHAKE_S)
                sock.connect(self.sockaddr)
            except OSError:
                sock.close()
                raise
            return sock
        # A host name is resolved each time (IPv4 or IPv6), as libzmq does.
        assert isinstance(self.sockaddr, tuple)
        sock = socket.create_connection(self.sockaddr, timeout=_HANDSHAKE_S)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _check_greeting(self, greeting: bytes) -> None:
        if greeting[0] != 0xFF or greeting[9] != 0x7F or greeting[10] < 3:
            raise ValueError(f"{self.address} does not speak ZMTP 3 (ZMQ 4)")
        mechanism = greeting[12:32].rstrip(b"\0")
        if mechanism != b"NULL":
            raise ValueError(f"{self.address} asks for the {mechanism!r} mechanism, not NULL")

    def _check_ready(self, sock: socket.socket) -> None:
        flags, size = self._read_exactly(sock, 2)
        if flags & _LONG:
            (size,) = _SIZE.unpack(bytes([size]) + self._read_exactly(sock, 7))
        body = self._read_exactly(sock, size)
        if not flags & _COMMAND or body[1 : 1 + body[0]] != b"READY":
            raise ValueError(f"{self.address} did not say READY")
        kind = _properties(body[1 + body[0] :]).get(b"socket-type", b"")
        if kind != b"ROUTER":
            raise ValueError(
                f"{self.address} is a ZMQ {kind.decode(errors='replace')} socket, "
                "not a ROUTER (a bridge sender)"
            )

    @staticmethod
    def _read_exactly(sock: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise ConnectionError(
                    "the peer closed the connection during ZMQ's greeting (a ZMQ socket "
                    "that does not talk to a DEALER: not a ROUTER, not a bridge sender?)"
                )
            data += chunk
        return data

    def close(self) -> None:
        """End the connection (a later ``connect`` makes a new one)."""
        if self._sock is not None:
            self._poller.unregister(self._sock)
            self._sock.close()
            self._sock = None
        self._start = self._end = 0
        self._unsent.clear()
        self.more = False

    def _gone(self, why: str) -> ConnectionError:
        """The connection ended or stalled inside a message: closed now (the next
        ``connect`` makes a new one), and the error to raise."""
        self.close()
        return ConnectionError(f"{self.address}: {why}")

    # -- reading ------------------------------------------------------------------------

    def poll(self, timeout_ms: int) -> bool:
        """Wait up to ``timeout_ms`` for the next message part to begin; whether it has.

        Sends what waits to be sent and answers the ROUTER's ``PING``s on the
        way. Raises: ``ConnectionError``."""
        if self._sock is None:
            return False
        if self._unsent:
            self._flush()
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            if self._end > self._start:
                if not self._buf[self._start] & _COMMAND:
                    return True
                self._command(time.monotonic() + self.stall_s)
                continue
            left = max(deadline - time.monotonic(), 0.0)
            if not self._poller.poll(left * 1000):
                return False
            self._fill(1, time.monotonic() + self.stall_s)

    def _fill(self, need: int, deadline: float) -> None:
        """Read until ``need`` bytes are unread (``need`` <= the buffer's size)."""
        sock = self._sock
        if sock is None:
            raise ConnectionError(f"{self.address}: not connected")
        if self._start + need > len(self._buf):
            # Move the unread bytes to the front (at most a part's head: small).
            left = self._end - self._start
            self._buf[:left] = self._view[self._start : self._end]
            self._start, self._end = 0, left
        while self._end - self._start < need:
            want = max(need - (self._end - self._start), _HEAD_READ)
            room = min(len(self._buf) - self._end, want)
            self._end += self._receive(sock, self._view[self._end : self._end + room], deadline)

    def _receive(
        self, sock: socket.socket, into: memoryview, deadline: float, whole: bool = False
    ) -> int:
        """Some bytes into ``into`` (at least one; ``whole``: all of it, unless the
        stall time passes first), waiting until ``deadline`` for the first."""
        while True:
            try:
                count = sock.recv_into(into, len(into), socket.MSG_WAITALL if whole else 0)
            except BlockingIOError:
                count = -1  # the stall time (``SO_RCVTIMEO``) passed with nothing
            except OSError as exc:
                raise self._gone(os.strerror(exc.errno or errno.EIO)) from None
            if count == 0:
                raise self._gone("the connection was closed")
            if count > 0:
                return count
            if time.monotonic() >= deadline:
                raise self._gone(f"no data for {self.stall_s:g} s inside a message")

    def _head(self, deadline: float) -> int:
        """The next message part's size (commands are handled on the way)."""
        while True:
            self._fill(1, deadline)
            if self._buf[self._start] & _COMMAND:
                self._command(deadline)
                continue
            flags, size = self._size(deadline)
            self.more = bool(flags & _MORE)
            return size

    def _size(self, deadline: float) -> tuple[int, int]:
        """The next frame's flags and size (RFC 23: a short or a long size)."""
        self._fill(2, deadline)
        flags, size = self._buf[self._start], self._buf[self._start + 1]
        if flags & _LONG:
            self._fill(9, deadline)
            (size,) = _SIZE.unpack_from(self._buf, self._start + 1)
            self._start += 9
        else:
            self._start += 2
        return flags, size

    def _command(self, deadline: float) -> None:
        """The command next in the stream: ``PING`` is answered, the rest ignored."""
        _, size = self._size(deadline)
        if size > _MAX_PART:
            raise self._gone(f"sent a command of {size} bytes")
        body = self._take(size, deadline)
        if body[1 : 1 + body[0]] == b"PING":
            # RFC 37 (ZMTP 3.1): answer with the context the ping carried (after its TTL).
            self._queue(_command(b"PONG", body[1 + body[0] + 2 :]))

    def _take(self, size: int, deadline: float) -> bytes:
        if size <= len(self._buf):
            self._fill(size, deadline)
            data = bytes(self._view[self._start : self._start + size])
            self._start += size
            return data
        out = bytearray(size)
        self._into(memoryview(out), deadline)
        return bytes(out)

    def _into(self, into: memoryview, deadline: float) -> None:
        """The next ``len(into)`` bytes of the stream into ``into``: first what
        is buffered, then straight from the socket."""
        have = min(self._end - self._start, len(into))
        into[:have] = self._view[self._start : self._start + have]
        self._start += have
        sock = self._sock
        assert sock is not None
        while have < len(into):
            have += self._receive(sock, into[have:], deadline, whole=True)

    def recv(self) -> bytes:
        """The next message part, whole (blocks until it is here), of at most 1 MiB.

        Raises: ``ConnectionError`` (closed, stalled for ``stall_s`` inside it, or
        sent a larger part: use ``recv_into``)."""
        deadline = time.monotonic() + self.stall_s
        size = self._head(deadline)
        if size > _MAX_PART:
            raise self._gone(f"sent a part of {size} bytes where a short one was expected")
        return self._take(size, deadline)

    def recv_into(self, buffer: memoryview) -> int:
        """The next message part's size; the part is in ``buffer`` when that size
        is ``buffer.nbytes`` (``buffer``: writable, C-contiguous, cast to bytes),
        else it was dropped and ``buffer`` holds nothing of it.

        Raises: ``ConnectionError``."""
        deadline = time.monotonic() + self.stall_s
        size = self._head(deadline)
        if size != buffer.nbytes:
            self._drop(size, deadline)
            return size
        self._into(buffer.cast("B"), deadline)
        return size

    def skip(self) -> int:
        """Drop the next message part; its size. Raises: ``ConnectionError``."""
        deadline = time.monotonic() + self.stall_s
        size = self._head(deadline)
        self._drop(size, deadline)
        return size

    def _drop(self, size: int, deadline: float) -> None:
        while size:
            chunk = min(size, len(self._buf))
            self._take(chunk, deadline)
            size -= chunk

    # -- sending ------------------------------------------------------------------------

    def send(self, parts: Sequence[bytes]) -> bool:
        """Send one message of ``parts`` (small: acknowledgements), never blocking;
        False when not connected or too much is still unsent (nothing is sent then)."""
        if self._sock is None or len(self._unsent) > _MAX_UNSENT:
            return False
        out = bytearray()
        for k, part in enumerate(parts):
            more = _MORE if k < len(parts) - 1 else 0
            if len(part) > 255:
                out += bytes([more | _LONG]) + _SIZE.pack(len(part))
            else:
                out += bytes([more, len(part)])
            out += part
        self._queue(bytes(out))
        return self._sock is not None

    def _queue(self, data: bytes) -> None:
        self._unsent += data
        self._flush()

    def _flush(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            sent = sock.send(self._unsent, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            self.close()  # the next read says it is gone, or the next connect is new
            return
        del self._unsent[:sent]
