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


@functools.lru_cache(maxsize=_LAYOUTS_KEPT)
def _layout(data: bytes) -> tuple[tuple[int, ...], np.dtype[Any], Literal["C", "F"]]:
    """An array's shape, dtype and order from its layout bytes."""
    fortran, ndim = _LAYOUT_HEAD.unpack_from(data)
    shape = struct.unpack_from(f"<{ndim}q", data, _LAYOUT_HEAD.size)
    return shape, _dtype(data[_LAYOUT_HEAD.size + 8 * ndim :]), "F" if fortran else "C"


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
        self._layouts: dict[tuple[Any, ...], bytes] = {}
        self._packer = msgpack.Packer(default=self._default, strict_types=True, autoreset=True)

    def encode(self, obj: Any) -> tuple[bytes, list[memoryview]] | None:
        """``obj`` as a MessagePack stream and its out-of-band buffers (views, not
        copies), or ``None`` when it is not plain data (see the module docstring).
        """
        self._buffers = buffers = list[memoryview]()
        try:
            stream: bytes = self._packer.pack(obj)
        except (TypeError, ValueError, OverflowError):
            return None  # not plain data (or too deep): the caller pickles it
        finally:
            # Hold on to nothing of the caller's (a 1 GiB array put in the store).
            self._seen.clear()
            self._buffers = []
        return stream, buffers

    def _add(self, key: int, buffer: memoryview) -> int:
        index = self._seen.get(key)
        if index is None:
            index = self._seen[key] = len(self._buffers)
            self._buffers.append(buffer)
        return index

    def _array(self, obj: np.ndarray[Any, Any]) -> msgpack.ExtType:
        dtype = obj.dtype
        shape = obj.shape
        held = id(obj)  # the caller's array: one held twice is sent once
        # One lookup for the common case: a C-contiguous array of a layout seen before.
        key: tuple[Any, ...] = (dtype, shape)
        layout = self._layouts.get(key)
        if layout is None or not obj.flags.c_contiguous:
            if dtype.hasobject or dtype.fields is not None:
                raise TypeError("not a plain dtype")
            fortran = obj.ndim > 1 and not obj.flags.c_contiguous and obj.flags.f_contiguous
            if fortran:
                obj, key = obj.T, (dtype, shape, True)
            else:
                obj = np.ascontiguousarray(obj)
            layout = self._layouts.get(key)
            if layout is None:
                if len(self._layouts) >= _LAYOUTS_KEPT:
                    self._layouts.clear()
                layout = self._layouts[key] = _layout_bytes(dtype, shape, fortran)
        index = self._add(held, _bytes_of(obj) if obj.size else _EMPTY)
        return msgpack.ExtType(_ARRAY, _INDEX.pack(index) + layout)

    def _default(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is tuple:
            return [_TUPLE_MARK, *obj]
        if kind is np.ndarray:
            return self._array(obj)
        if isinstance(obj, np.generic):
            dtype = obj.dtype
            if dtype.hasobject or dtype.fields is not None:
                raise TypeError("not a plain dtype")
            text = dtype.str.encode("ascii")
            return msgpack.ExtType(_SCALAR, bytes((len(text),)) + text + obj.tobytes())
        if kind is pickle.PickleBuffer:
            raw = obj.raw()
            index = self._add(id(obj), raw)
            return msgpack.ExtType(_BUFFER, _BUFFER_HEAD.pack(index, raw.readonly))
        raise TypeError(f"{kind.__name__} is not plain data")


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
        if code == _TUPLE:
            return _TUPLE_MARK
        if code == _ARRAY:
            shape, dtype, order = _layout(data[_INDEX.size :])
            return np.ndarray(shape, dtype, buffers[_INDEX.unpack_from(data)[0]], order=order)
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
