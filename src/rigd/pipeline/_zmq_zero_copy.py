"""Zero-copy ZMQ sends of memory that outlives the message, without pyzmq's gc thread.

pyzmq's zero-copy send (``copy=False``) keeps a reference to the buffer
until libzmq is done with it: libzmq's free function sends the buffer's id
over an inproc socket to a garbage-collection thread, which takes the GIL
and drops the reference. For a bridge that is one more thread woken per
frame (measured at 512x512 uint16: 13-24 us of CPU per frame in that thread,
and a wake-up the sender's own thread pays for in GIL hand-overs).

A bridge's sender does not need it: a lossless link's frames are sent from
ring slots the sender holds until the receiver acknowledges them, and the
sender ends its ZMQ context (which waits until libzmq dropped every queued
message) before it gives slots back on any other path
(``rigd.pipeline._bridge_sender``). So it calls libzmq's
``zmq_msg_init_data`` with no free function (libzmq's documented way to
send memory the caller keeps valid) and ``zmq_msg_send``, through
``ctypes``, on the socket pyzmq opened (``Socket.underlying``), in the same
libzmq pyzmq is linked with (found among the process's mapped libraries).
Where that library cannot be found (pyzmq built with libzmq inside its own
extension, or another platform), ``ZeroCopySend.available`` is false and the
caller sends with pyzmq's ``copy=False``.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from typing import Any

import zmq

__all__ = ["ZeroCopySend"]

#: ``sizeof(zmq_msg_t)`` in libzmq 4.x (``unsigned char _[64]``).
_MSG_SIZE = 64


@functools.cache
def _libzmq() -> Any:
    """pyzmq's libzmq, as a ``ctypes`` library, or None when it cannot be told apart."""
    try:
        with open(f"/proc/{os.getpid()}/maps") as maps:
            paths = {
                line.split(maxsplit=5)[-1].strip()
                for line in maps
                if os.path.basename(line.rstrip()).startswith("libzmq")
            }
    except OSError:
        return None
    if len(paths) != 1:
        return None  # none mapped (linked into pyzmq's extension), or two: which is pyzmq's?
    try:
        lib = ctypes.CDLL(paths.pop())
        version = [ctypes.c_int() for _ in range(3)]
        lib.zmq_version(*(ctypes.byref(v) for v in version))
    except (OSError, AttributeError):
        return None
    if tuple(v.value for v in version) != zmq.zmq_version_info():
        return None
    lib.zmq_msg_init_data.argtypes = [
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.c_size_t,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    lib.zmq_msg_init_data.restype = ctypes.c_int
    lib.zmq_msg_send.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int]
    lib.zmq_msg_send.restype = ctypes.c_int
    lib.zmq_msg_close.argtypes = [ctypes.c_void_p]
    lib.zmq_msg_close.restype = ctypes.c_int
    lib.zmq_errno.argtypes = []
    lib.zmq_errno.restype = ctypes.c_int
    return lib


class ZeroCopySend:
    """Sends memory by address on one pyzmq socket, zero-copy, with no free function.

    The caller keeps the memory valid and unchanged until libzmq is done with
    the message: until the peer said it has it, or the socket's context was
    ended. Not thread-safe (as the socket).
    """

    def __init__(self, socket: zmq.Socket[Any]) -> None:
        self._lib = _libzmq()
        self._socket = ctypes.c_void_p(socket.underlying)
        self._msg = ctypes.create_string_buffer(_MSG_SIZE)

    @property
    def available(self) -> bool:
        """Whether pyzmq's libzmq was found (else send with pyzmq's ``copy=False``)."""
        return self._lib is not None

    def send(self, address: int, nbytes: int, flags: int) -> None:
        """Send ``nbytes`` at ``address`` as the message's next part.

        Raises:
            zmq.Again: the message cannot be queued now (``zmq.NOBLOCK``).
            zmq.ZMQError: any other refusal of libzmq's (``errno`` says which).
        """
        lib = self._lib
        msg = self._msg
        if lib.zmq_msg_init_data(msg, address, nbytes, None, None) != 0:
            raise zmq.ZMQError(lib.zmq_errno())
        if lib.zmq_msg_send(msg, self._socket, flags) < 0:
            code = lib.zmq_errno()
            lib.zmq_msg_close(msg)  # not sent: still the caller's (nothing to free)
            if code == errno.EAGAIN:
                raise zmq.Again(code)
            raise zmq.ZMQError(code)
