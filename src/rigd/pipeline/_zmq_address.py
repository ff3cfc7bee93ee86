"""One line for a ZMQ ``bind``/``connect`` an actor's address option was refused:
what libzmq said and the fix (``ZmqSource``, ``BridgeSender``)."""

from __future__ import annotations

import errno

import zmq

__all__ = ["address_refused"]


def address_refused(actor: str, address: str, bind: bool, exc: zmq.ZMQError) -> str:
    """``actor`` (its class name) could not ``bind`` (else connect to) ``address``:
    libzmq's errno in words, and the fix (another port, and ``ss`` to find what
    holds the one taken; an address of this machine; the address's form)."""
    verb = "bind" if bind else "connect to"
    why = zmq.strerror(exc.errno).lower() if exc.errno else str(exc)
    if exc.errno == errno.EADDRINUSE:
        port = address.rsplit(":", 1)[-1]
        fix = (
            f"give another port in its address option, or stop what holds {port} "
            f"(`ss -ltnp 'sport = :{port}'` names it)"
        )
    elif exc.errno == errno.EADDRNOTAVAIL:
        fix = "bind an address of this machine (tcp://*:PORT binds them all)"
    else:
        fix = "give an address as tcp://HOST:PORT (or ipc://PATH)"
    return f"{actor} cannot {verb} {address}: {why}; {fix}"
