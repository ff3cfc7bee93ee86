"""Messages on the wire: framing, pickling, and large buffers through /dev/shm.

A frame is a 4-byte little-endian length, one flag byte, and a body. The body
is a pickle (protocol 5). When the message holds buffers of ``LARGE_BUFFER``
bytes or more (numpy arrays, mostly), those are not pickled through the
socket: the sender writes them into one fresh shared-memory file (one copy),
and the receiver maps it (zero copies) and unlinks it at once, so nothing is
left behind even if the receiver later crashes. Segments a crash leaves
between those two steps carry the session's prefix, and the runtime removes
them at shutdown.
"""

from __future__ import annotations

import mmap
import os
import pickle
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

import cloudpickle

__all__ = [
    "LARGE_BUFFER",
    "SHM_DIR",
    "FrameReader",
    "dumps",
    "loads",
    "pack_frame",
    "sweep_segments",
]

# Buffers from 1 MiB up go through shared memory; below that a socket copy is
# cheaper than creating, mapping and unlinking a file (about 30 us).
LARGE_BUFFER = 1 << 20
SHM_DIR = "/dev/shm"
_PAGE = mmap.PAGESIZE

_HEADER = struct.Struct("<IB")
_FLAG_PLAIN = 0
_FLAG_SHM = 1

_counter_lock = threading.Lock()
_counter = 0


def _next_segment_name(prefix: str) -> str:
    global _counter
    with _counter_lock:
        _counter += 1
        n = _counter
    return f"{prefix}m{os.getpid()}-{n}"


def _pickle(obj: object, buffer_callback: Callable[[pickle.PickleBuffer], bool]) -> bytes:
    """Pickle with the C pickler, falling back to cloudpickle when needed.

    cloudpickle is a pure-Python pickler and ten times slower, so it is used
    only for what plain pickle cannot do (lambdas, local classes) or gets
    wrong across processes (anything defined in ``__main__``, which plain
    pickle sends by a name the worker cannot resolve).
    """
    try:
        data = pickle.dumps(obj, protocol=5, buffer_callback=buffer_callback)
    except (pickle.PicklingError, AttributeError, TypeError):
        return cloudpickle.dumps(obj, protocol=5, buffer_callback=buffer_callback)  # type: ignore[no-any-return]
    if b"__main__" in data:
        return cloudpickle.dumps(obj, protocol=5, buffer_callback=buffer_callback)  # type: ignore[no-any-return]
    return data


def dumps(obj: object, shm_prefix: str) -> bytes:
    """Serialize ``obj`` into a frame body, large buffers into shared memory.

    Args:
        obj: any picklable object.
        shm_prefix: the session's segment name prefix.

    Returns:
        The frame body, flag byte included (pass it to ``pack_frame``).

    Raises:
        TypeError: ``obj`` cannot be pickled.
        OSError: /dev/shm is full (the error names the size needed).
    """
    large: list[memoryview] = []

    def keep_large(buf: pickle.PickleBuffer) -> bool:
        view = buf.raw()
        if view.nbytes < LARGE_BUFFER:
            return True  # in band
        large.append(view)
        return False

    try:
        data = _pickle(obj, keep_large)
    except Exception as exc:
        if isinstance(exc, TypeError):
            raise
        raise TypeError(str(exc)) from exc
    if not large:
        return b"\x00" + data
    name = _next_segment_name(shm_prefix)
    layout = _write_segment(name, large)
    meta = pickle.dumps((name, layout), protocol=5)
    return b"\x01" + struct.pack("<I", len(meta)) + meta + data


def _write_segment(name: str, views: list[memoryview]) -> list[tuple[int, int]]:
    layout: list[tuple[int, int]] = []
    offset = 0
    for view in views:
        layout.append((offset, view.nbytes))
        offset += -(-view.nbytes // _PAGE) * _PAGE
    free = _shm_free_bytes()
    if offset > free:
        raise OSError(
            f"{SHM_DIR} has {free} bytes free but a message needs {offset}; "
            "free space there or enlarge it (docker: --shm-size)"
        )
    path = os.path.join(SHM_DIR, name)
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        for (start, _), view in zip(layout, views, strict=True):
            # pwrite copies straight into the page cache: one copy, and no
            # page faults on the sender's side as an mmap would take.
            done = 0
            while done < view.nbytes:
                done += os.pwrite(fd, view[done:], start + done)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)
    return layout


def _shm_free_bytes() -> int:
    st = os.statvfs(SHM_DIR)
    return st.f_bavail * st.f_frsize


def loads(body: bytes | memoryview) -> Any:
    """Deserialize a frame body made by ``dumps``; maps and unlinks its segment."""
    flag = body[0]
    if flag == _FLAG_PLAIN:
        return pickle.loads(memoryview(body)[1:])
    (meta_len,) = struct.unpack_from("<I", body, 1)
    name, layout = pickle.loads(memoryview(body)[5 : 5 + meta_len])
    buffers = _map_segment(name, layout)
    return pickle.loads(memoryview(body)[5 + meta_len :], buffers=buffers)


def _map_segment(name: str, layout: list[tuple[int, int]]) -> list[memoryview]:
    path = os.path.join(SHM_DIR, name)
    fd = os.open(path, os.O_RDWR)
    try:
        size = os.fstat(fd).st_size
        # MAP_POPULATE maps every page now, in one kernel call, instead of
        # one fault per 4 KiB page when numpy first touches the array.
        segment = mmap.mmap(fd, size, flags=mmap.MAP_SHARED | mmap.MAP_POPULATE)
    finally:
        os.close(fd)
        os.unlink(path)
    whole = memoryview(segment)
    return [whole[start : start + length] for start, length in layout]


def pack_frame(body: bytes) -> bytes:
    """Prefix a body with its length, ready for ``sendall``."""
    return struct.pack("<I", len(body)) + body


class FrameReader:
    """Split a byte stream into frames.

    Feed it whatever ``recv`` returned; it yields each complete frame's body
    and keeps the rest for the next feed.
    """

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> Iterator[memoryview | bytes]:
        """Yield every frame completed by ``chunk``."""
        if not self._buffer:
            # Fast path: most reads hold whole frames; slice them in place.
            view = memoryview(chunk)
            pos = 0
            end = len(chunk)
            while end - pos >= 4:
                (size,) = struct.unpack_from("<I", chunk, pos)
                if end - pos - 4 < size:
                    break
                yield view[pos + 4 : pos + 4 + size]
                pos += 4 + size
            if pos < end:
                self._buffer += view[pos:]
            return
        self._buffer += chunk
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= 4:
            (size,) = struct.unpack_from("<I", buf, pos)
            if len(buf) - pos - 4 < size:
                break
            yield bytes(buf[pos + 4 : pos + 4 + size])
            pos += 4 + size
        del buf[:pos]


def sweep_segments(prefix: str) -> int:
    """Remove every segment whose name starts with ``prefix``; return how many."""
    removed = 0
    try:
        names = os.listdir(SHM_DIR)
    except FileNotFoundError:
        return 0
    for name in names:
        if name.startswith(prefix):
            try:
                os.unlink(os.path.join(SHM_DIR, name))
                removed += 1
            except FileNotFoundError:
                pass
    return removed

