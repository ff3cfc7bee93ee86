"""Plain data as MessagePack, its numpy arrays apart: the fast path of ``_oob``.

Most messages are plain data: dicts, lists and tuples of numbers, strings
and numpy arrays (improv's ``{"t": ..., "k": ..., "data": array}``, ROI lists,
``(t_acq, (t_dev, row))``). Pickling one costs numpy's reduce machinery (a
dtype object pickled and rebuilt per array) and pickle's own opcodes; packing
it with MessagePack's C packer, the arrays described by an extension type
and their bytes left out of the stream, costs a fraction of that on both
sides (BENCHMARKS.md, issue 17).

What goes this way (exact types: a subclass, a dict subclass, an ``IntEnum``
is pickled instead):

- ``None``, ``bool``, ``int`` (within 64 bits), ``float``, ``str``, ``bytes``,
  ``list`` and ``dict``: MessagePack's own types;
- ``tuple``: an array whose first item is a marker, read back as a tuple;
- numpy arrays of a plain dtype (numbers, bool, datetimes, fixed strings;
  not ``object``, not structured): their bytes out of band, as pickle's
  protocol 5 sends them. C and Fortran order are kept; other strides are
  made C-contiguous (pickle does the same);
- numpy scalars (``np.float64(1.5)``) of such dtypes;
- ``pickle.PickleBuffer``: out of band, read back as pickle reads it.

What a reader gets differs from ``pickle.loads`` in three documented ways:
a ``bytearray`` or ``memoryview`` inside the object arrives as ``bytes``
(MessagePack packs them as binary; pickle refuses a memoryview); a list or
dict the object holds twice arrives as two equal copies; an array held twice
is sent once and read back as two views of the same bytes. Anything this
path refuses (another type, an int over 64 bits, a string that is not
valid UTF-8, nesting deeper than 500) makes ``encode`` return ``None``: the
caller pickles the object instead.
"""

from __future__ import annotations

import functools
import pickle
import struct
from typing import Any, Literal

import msgpack
import numpy as np

__all__ = ["Encoder", "decode"]

# Extension type codes (MessagePack's application-specific range is 0..127).
_ARRAY = 1
_SCALAR = 2
_TUPLE = 3
_BUFFER = 4

# An array: u32 buffer index, then its layout: u8 1 if Fortran order, u8 ndim,
# ndim x i64 shape, dtype.str. Layouts repeat from message to message: both
# sides keep the last few (the writer's bytes, the reader's shape and dtype).
_INDEX = struct.Struct("<I")
_LAYOUT_HEAD = struct.Struct("<BB")
_LAYOUTS_KEPT = 64
# A buffer: its index, 1 if read-only.
_BUFFER_HEAD = struct.Struct("<IB")
_TUPLE_MARK = msgpack.ExtType(_TUPLE, b"")
_EMPTY = memoryview(b"")


@functools.lru_cache(maxsize=256)
def _dtype(text: bytes) -> np.dtype[Any]:
    return np.dtype(text.decode("ascii"))


# What a reader learnt of each array extension seen (its whole data: index
# and layout): (buffer index, shape, dtype, order). At most _READ_KEPT kept.
_ArrayRead = tuple[int, tuple[int, ...], np.dtype[Any], Literal["C", "F"]]
_READ: dict[bytes, _ArrayRead] = {}
_READ_KEPT = 256


def _read_array(data: bytes) -> _ArrayRead:
    """An array extension's buffer index, shape, dtype and order (kept for the next)."""
    (index,) = _INDEX.unpack_from(data)
    fortran, ndim = _LAYOUT_HEAD.unpack_from(data, _INDEX.size)
    at = _INDEX.size + _LAYOUT_HEAD.size
    shape = struct.unpack_from(f"<{ndim}q", data, at)
    order: Literal["C", "F"] = "F" if fortran else "C"
    way: _ArrayRead = (index, shape, _dtype(data[at + 8 * ndim :]), order)
    if len(_READ) >= _READ_KEPT:
        _READ.clear()
    _READ[data] = way
    return way


def _layout_bytes(dtype: np.dtype[Any], shape: tuple[int, ...], fortran: bool) -> bytes:
    return (
        _LAYOUT_HEAD.pack(fortran, len(shape))
        + struct.pack(f"<{len(shape)}q", *shape)
        + dtype.str.encode("ascii")
    )


class Encoder:
    """Packs plain data; one per writer (not thread-safe: it reuses its packer)."""

    def __init__(self) -> None:
        self._buffers: list[memoryview] = []
        self._seen: dict[int, int] = {}
        # Per array layout seen (dtype, shape, strides): how to take its bytes
        # and its extension type's data; see ``_learn``.
        self._arrays: dict[tuple[Any, ...], _ArrayWay] = {}
        self._packer = msgpack.Packer(default=self._default, strict_types=True, autoreset=True)

    def encode(self, obj: Any) -> tuple[bytes, list[memoryview]] | None:
        """``obj`` as a MessagePack stream and its out-of-band buffers (views, not
        copies), or ``None`` when it is not plain data (see the module docstring).
        """
        buffers: list[memoryview] = []
        self._buffers = buffers
        try:
            stream: bytes = self._packer.pack(obj)
        except (TypeError, ValueError, OverflowError):
            return None  # not plain data (or too deep): the caller pickles it
        finally:
            # Hold on to nothing of the caller's (a 1 GiB array put in the store).
            self._seen.clear()
            self._buffers = []
        return stream, buffers

    def _default(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is np.ndarray:
            # A stream repeats its arrays' layouts: after the first, an array
            # costs one lookup and its buffer (a message's latency at 200/s is
            # mostly cold code and data: the less it touches, the better).
            key = (obj.dtype, obj.shape, obj.strides)
            way = self._arrays.get(key)
            if way is None:
                way = self._learn(obj, key)
            held = id(obj)  # the caller's array: one held twice is sent once
            index = self._seen.get(held)
            if index is None:
                buffers = self._buffers
                index = self._seen[held] = len(buffers)
                take = way.take
                buffers.append(
                    obj.data if take is _RAW else obj.data.cast("B") if take is _CAST else take(obj)
                )
            return way.ext if index == 0 else _ext(_ARRAY, _INDEX.pack(index) + way.layout)
        if kind is tuple:
            return [_TUPLE_MARK, *obj]
        if isinstance(obj, np.generic):
            dtype = obj.dtype
            if dtype.hasobject or dtype.fields is not None:
                raise TypeError("not a plain dtype")
            text = dtype.str.encode("ascii")
            return _ext(_SCALAR, bytes((len(text),)) + text + obj.tobytes())
        if kind is pickle.PickleBuffer:
            raw = obj.raw()
            index = self._seen.get(id(obj))
            if index is None:
                index = self._seen[id(obj)] = len(self._buffers)
                self._buffers.append(raw)
            return _ext(_BUFFER, _BUFFER_HEAD.pack(index, raw.readonly))
        raise TypeError(f"{kind.__name__} is not plain data")

    def _learn(self, obj: np.ndarray[Any, Any], key: tuple[Any, ...]) -> _ArrayWay:
        """How to send arrays of ``obj``'s dtype, shape and strides (kept for the next)."""
        dtype = obj.dtype
        if dtype.hasobject or dtype.fields is not None:
            raise TypeError("not a plain dtype")
        fortran = obj.ndim > 1 and not obj.flags.c_contiguous and obj.flags.f_contiguous
        take: Any
        if not obj.size:
            take = _empty
        elif fortran:
            take = _transposed
        elif not obj.flags.c_contiguous:
            take = _contiguous  # made C-contiguous (pickle does the same)
        else:
            try:
                view = obj.data
                take = _RAW if view.format == "B" and view.ndim == 1 else _CAST
                if take is _CAST:
                    view.cast("B")
            except (ValueError, TypeError):  # datetimes: not in the buffer protocol
                take = _bytes_of
        layout = _layout_bytes(dtype, obj.shape, fortran)
        if len(self._arrays) >= _LAYOUTS_KEPT:
            self._arrays.clear()
        way = self._arrays[key] = _ArrayWay(take, layout, _ext(_ARRAY, _INDEX.pack(0) + layout))
        return way


class _ArrayWay:
    """How one array layout is sent: ``take`` its bytes; its extension's
    ``layout`` bytes, and the whole extension as the message's first buffer."""

    __slots__ = ("ext", "layout", "take")

    def __init__(self, take: Any, layout: bytes, ext: msgpack.ExtType) -> None:
        self.take = take
        self.layout = layout
        self.ext = ext


def _ext(code: int, data: bytes) -> msgpack.ExtType:
    """``msgpack.ExtType(code, data)`` without its argument checks (ours are right)."""
    return tuple.__new__(msgpack.ExtType, (code, data))


# An array's bytes, as a view: a 1-D uint8 array's own buffer, or cast to bytes.
_RAW = object()
_CAST = object()


def _empty(array: np.ndarray[Any, Any]) -> memoryview:
    return _EMPTY


def _transposed(array: np.ndarray[Any, Any]) -> memoryview:
    return _bytes_of(array.T)


def _contiguous(array: np.ndarray[Any, Any]) -> memoryview:
    return _bytes_of(np.ascontiguousarray(array))


def _bytes_of(array: np.ndarray[Any, Any]) -> memoryview:
    """A C-contiguous array's bytes, as a view."""
    try:
        return array.data.cast("B")
    except (ValueError, TypeError):  # datetimes: not in the buffer protocol
        return array.reshape(-1).view(np.uint8).data


def decode(stream: memoryview, buffers: list[memoryview], copy: bool = False) -> Any:
    """The object ``Encoder.encode`` packed, its arrays views of ``buffers``.

    With ``copy``, each buffer is copied first (writable arrays that outlive
    the area). Raises ``ValueError`` (or another ``msgpack`` error) on a
    stream that is not one ``encode`` made.
    """
    if copy:
        buffers = [memoryview(bytearray(b)) for b in buffers]

    def ext_hook(code: int, data: bytes) -> Any:
        if code == _ARRAY:
            way = _READ.get(data) or _read_array(data)
            return np.ndarray(way[1], way[2], buffers[way[0]], order=way[3])
        if code == _TUPLE:
            return _TUPLE_MARK
        if code == _SCALAR:
            n = data[0]
            return np.frombuffer(data, _dtype(data[1 : 1 + n]), 1, 1 + n)[0]
        if code == _BUFFER:
            index, readonly = _BUFFER_HEAD.unpack(data)
            buf = buffers[index]
            if readonly:
                return buf.toreadonly()
            return buf.obj if copy else buf
        raise ValueError(f"unknown MessagePack extension type {code}")

    return msgpack.unpackb(
        stream,
        ext_hook=ext_hook,
        list_hook=_list_hook,
        strict_map_key=False,
        raw=False,
    )


def _list_hook(items: list[Any]) -> Any:
    if items and items[0] is _TUPLE_MARK:
        return tuple(items[1:])
    return items
