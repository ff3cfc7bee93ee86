"""Objects as bytes with their large buffers apart: pickle protocol 5, out of band.

``dumps`` pickles any object with protocol 5 (PEP 574) and hands back the
buffers of the arrays and large ``bytes`` inside it separately, instead of
copying them into the pickle stream. Plain data (dicts, lists, tuples of
numbers, strings and numpy arrays: what most messages are) takes a faster
path, MessagePack with the same buffers apart (``_msgpack``, whose
docstring lists what goes that way and the three ways a reader's object
differs from pickle's). ``pack_into`` lays the stream and the
buffers out in one byte area (a ring slot, a shared-memory file);
``loads_from`` reads them back with every buffer a *view* of that area: no
copy on the reader's side.

What a reader gets back:

- numpy arrays (C- or Fortran-contiguous, numeric or structured dtypes):
  read-only arrays viewing the area;
- bytes sent as ``pickle.PickleBuffer(data)``: a read-only ``memoryview``
  of the area (``bytes(view)`` copies it). Plain ``bytes`` are copied into
  the pickle stream and arrive as ``bytes``: CPython's pickler writes them
  itself and lets no hook take them out of band;
- everything else as ``pickle.loads`` makes it.

The views are valid as long as the area holds the object (until a ring
reader releases its message; for as long as the store's file is mapped).

Layout of a packed object (all little-endian)::

    u32 magic          u32 buffer count n   u64 stream length
    n x (u64 offset, u64 length)             buffers, from the area's start
    stream                                   "RGDM": a protocol-5 pickle;
                                             "RGDP": MessagePack (``_msgpack``)
    buffers, each at a 64-byte boundary
"""

from __future__ import annotations

import pickle
import struct
import threading
from typing import Any

from rigd._exceptions import SerializationError
from rigd.storage._msgpack import Encoder, decode

__all__ = [
    "Packed",
    "SerializationError",
    "dumps",
    "loads_from",
    "pack_into",
    "read_packed",
    "write_packed",
]

_MAGIC = 0x4D444752  # b"RGDM": a pickle
_MAGIC_PLAIN = 0x50444752  # b"RGDP": MessagePack
_HEAD = struct.Struct("<IIQ")
_ENTRY = struct.Struct("<QQ")
_ALIGN = 64


class Packed:
    """An object packed (MessagePack or pickle, ``magic`` says which) with its
    buffers apart; ``nbytes`` is its packed size."""

    __slots__ = ("buffers", "magic", "nbytes", "stream")

    def __init__(self, stream: bytes, buffers: list[memoryview], magic: int = _MAGIC) -> None:
        self.stream = stream
        self.buffers = buffers
        self.magic = magic
        size = _HEAD.size + len(buffers) * _ENTRY.size + len(stream)
        for buf in buffers:
            size = -(-size // _ALIGN) * _ALIGN + buf.nbytes
        self.nbytes = size


_local = threading.local()


def dumps(obj: Any, encoder: Encoder | None = None) -> Packed:
    """Pack ``obj``: plain data as MessagePack, anything else pickled (protocol
    5), its arrays and large bytes out of band either way.

    ``encoder``: the caller's own (a ring's one writer keeps one); by default
    one per thread.

    Raises:
        SerializationError: ``obj`` cannot be pickled (a lock, a generator, an
            open file, a lambda ...); the message names its type and why.
    """
    if encoder is None:
        encoder = getattr(_local, "encoder", None)
        if encoder is None:
            encoder = _local.encoder = Encoder()
    plain = encoder.encode(obj)
    if plain is not None:
        return Packed(plain[0], plain[1], _MAGIC_PLAIN)
    buffers: list[pickle.PickleBuffer] = []
    try:
        stream = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:  # noqa: BLE001 - pickle raises many kinds for one cause
        raise SerializationError(
            f"an object of type {type(obj).__name__} cannot be pickled ({type(exc).__name__}: "
            f"{exc}); send plain data (numbers, strings, lists, dicts, tuples, numpy arrays, "
            "bytes) or objects of classes defined at module level"
        ) from None
    # ``raw``: the contiguous bytes of each buffer, as a view (no copy).
    return Packed(stream, [buf.raw() for buf in buffers])


def pack_into(packed: Packed, area: Any) -> int:
    """Write ``packed`` at the start of the writable buffer ``area``; return its size.

    Raises:
        ValueError: ``area`` is smaller than ``packed.nbytes``.
    """
    target = memoryview(area).cast("B")
    if packed.nbytes > target.nbytes:
        raise ValueError(f"{packed.nbytes} bytes do not fit in an area of {target.nbytes}")
    return write_packed(packed, target)


def write_packed(packed: Packed, target: memoryview) -> int:
    """``pack_into`` for a caller that checked the size and holds ``target`` as
    a byte view (format ``B``): a message ring's writer, per message."""
    buffers = packed.buffers
    stream = packed.stream
    n = len(buffers)
    pos = _HEAD.size + n * _ENTRY.size
    _HEAD.pack_into(target, 0, packed.magic, n, len(stream))
    end = pos + len(stream)
    target[pos:end] = stream
    entry = _HEAD.size
    for buf in buffers:
        pos = -(-end // _ALIGN) * _ALIGN
        end = pos + buf.nbytes
        _ENTRY.pack_into(target, entry, pos, buf.nbytes)
        target[pos:end] = buf
        entry += _ENTRY.size
    return end


def loads_from(area: Any, copy: bool = False) -> Any:
    """The object packed at the start of ``area``, its buffers views of ``area``.

    With ``copy``, every buffer is copied first: the object outlives the area.

    Raises:
        SerializationError: ``area`` does not hold a packed object, or it
            cannot be unpickled here (a class this process cannot import).
    """
    return read_packed(memoryview(area).cast("B"), copy)


def read_packed(view: memoryview, copy: bool = False) -> Any:
    """``loads_from`` for a caller that holds the area as a byte view (format
    ``B``): a message ring's reader, per message. Raises as ``loads_from``."""
    if view.nbytes < _HEAD.size:
        raise SerializationError("the area is too small to hold a packed object")
    magic, n, stream_len = _HEAD.unpack_from(view, 0)
    plain = magic == _MAGIC_PLAIN
    if not plain and magic != _MAGIC:
        raise SerializationError("the area does not hold a packed object (bad magic)")
    pos = _HEAD.size + n * _ENTRY.size
    if pos + stream_len > view.nbytes:
        raise SerializationError("a packed object's stream runs past its area")
    if not view.readonly:
        view = view.toreadonly()
    buffers: list[Any] = []
    for entry in range(_HEAD.size, pos, _ENTRY.size):
        offset, length = _ENTRY.unpack_from(view, entry)
        if offset + length > view.nbytes:
            raise SerializationError("a packed object's buffer runs past its area")
        buf = view[offset : offset + length]
        # MessagePack's ``decode`` copies them itself.
        buffers.append(bytearray(buf) if copy and not plain else buf)
    stream = view[pos : pos + stream_len]
    if plain:
        try:
            return decode(stream, buffers, copy)
        except Exception as exc:  # noqa: BLE001 - msgpack raises several kinds for one cause
            raise SerializationError(
                f"a message could not be decoded ({type(exc).__name__}: {exc}); the area is damaged"
            ) from None
    try:
        return pickle.loads(stream, buffers=buffers)
    except Exception as exc:  # noqa: BLE001 - unpickling runs the sender's classes' code
        raise SerializationError(
            f"a message could not be unpickled ({type(exc).__name__}: {exc}); is the "
            "sender's class importable here?"
        ) from None
