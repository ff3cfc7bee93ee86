"""Messages' per-layout tables: what a writer and a reader keep between messages.

A writer keeps, per array layout (dtype, shape, strides), how to take its
bytes and its extension type; a reader keeps, per extension, the array's
shape, dtype and order. These tests send streams whose layouts change under
those tables (same shape, other strides; more layouts than are kept; one
array twice) and check every message reads back as sent.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

from rigd.storage import FrameRing, MessageReader, SerializationError
from rigd.storage import message_ring_shape as ring_shape
from rigd.storage._msgpack import Encoder
from rigd.storage._oob import dumps, loads_from, pack_into


def through(encoder: Encoder, obj: Any) -> Any:
    """``obj`` packed with ``encoder`` (kept from message to message) and read back."""
    packed = dumps(obj, encoder)
    area = bytearray(packed.nbytes)
    pack_into(packed, area)
    return loads_from(memoryview(area))


def test_arrays_of_one_shape_and_dtype_but_other_strides_each_read_back_as_sent() -> None:
    encoder = Encoder()
    grid = np.arange(24, dtype="<f4").reshape(4, 6)
    wide = np.arange(48, dtype="<f4").reshape(4, 12)
    when = np.arange(24).astype("M8[us]").reshape(4, 6)
    sends = [
        grid,
        np.asfortranarray(grid),  # same dtype and shape: a Fortran layout
        wide[:, ::2],  # same dtype and shape, not contiguous: made C-contiguous
        grid[::-1],  # negative strides
        grid,
        when,
        np.asfortranarray(when),
        np.arange(6, dtype=np.uint8),  # a byte array sends its own buffer
        np.arange(6, dtype=">i2"),
        np.zeros((0, 6), "<f4"),
    ]
    for _ in range(2):  # the second time round, every layout comes from the tables
        for array in sends:
            value = through(encoder, {"a": array, "k": 1})["a"]
            assert value.dtype == array.dtype
            np.testing.assert_array_equal(value, array)
            if array.ndim > 1 and array.flags.f_contiguous and not array.flags.c_contiguous:
                assert value.flags.f_contiguous
                assert not value.flags.c_contiguous
            else:
                assert value.flags.c_contiguous
            assert not value.flags.writeable


def test_more_layouts_than_are_kept_all_read_back_and_the_tables_stay_bounded() -> None:
    from rigd.storage import _msgpack

    encoder = Encoder()
    for n in range(1, 400):
        array = np.full(n, n, np.int32)
        value = through(encoder, (n, array))
        assert value[0] == n
        assert value[1].shape == (n,)
        assert int(value[1][-1]) == n
    assert len(encoder._arrays) <= _msgpack._LAYOUTS_KEPT
    assert len(_msgpack._READ) <= _msgpack._READ_KEPT


def test_several_arrays_in_one_message_keep_their_own_bytes_and_one_held_twice_is_sent_once() -> (
    None
):
    encoder = Encoder()
    a = np.arange(10, dtype=np.float64)
    b = np.arange(10, dtype=np.float64) * 2  # the same layout as ``a``: its own buffer
    for _ in range(3):
        packed = dumps([a, b, a, pickle.PickleBuffer(b"xyz")], encoder)
        assert len(packed.buffers) == 3
        area = bytearray(packed.nbytes)
        pack_into(packed, area)
        first, second, again, raw = loads_from(memoryview(area))
        np.testing.assert_array_equal(first, a)
        np.testing.assert_array_equal(second, b)
        assert again.ctypes.data == first.ctypes.data
        assert raw == b"xyz"


def test_an_array_extension_pointing_past_the_buffers_is_refused_as_damaged() -> None:
    encoder = Encoder()
    packed = dumps({"a": np.arange(4, dtype=np.int64)}, encoder)
    area = bytearray(packed.nbytes)
    pack_into(packed, area)
    loads_from(memoryview(area))  # read once: its extension is in the reader's table
    area[4:8] = (0).to_bytes(4, "little")  # the area now says it has no buffers
    damaged = bytearray(area[:16]) + area[32:]  # ... and holds none, the stream moved up
    with pytest.raises(SerializationError, match="damaged"):
        loads_from(memoryview(damaged))


def test_a_stream_whose_layouts_change_arrives_whole_in_another_process() -> None:
    shape = ring_shape(64 * 1024)
    # Room for the whole stream: the child writes it all before this process reads.
    with FrameRing.create("layouts", shape, "uint8", slot_count=16, kind="messages") as ring:
        reader = MessageReader.attach(ring)
        code = f"""
            import numpy as np
            from rigd.storage import FrameRing, MessageWriter
            ring = FrameRing.attach({ring.name!r})
            writer = MessageWriter(ring)
            grid = np.arange(12, dtype=np.int16).reshape(3, 4)
            for k in range(12):
                base = grid + k
                array = (base, np.asfortranarray(base), base.T, base[:, ::2])[k % 4]
                writer.put({{"k": k, "a": array}}, frame_id=k)
            writer.close()
            ring.close()
            """
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        grid = np.arange(12, dtype=np.int16).reshape(3, 4)
        start, size = ring.slot_memory()
        got = []
        for message in reader:  # until the writer's end of stream
            value = message.value
            k = value["k"]
            base = grid + k
            expected = (base, base, base.T, base[:, ::2])[k % 4]
            np.testing.assert_array_equal(value["a"], expected)
            assert value["a"].flags.f_contiguous == (k % 4 in (1, 2))  # Fortran kept
            assert start <= value["a"].ctypes.data < start + size  # a view of the slot
            got.append(k)
        assert got == list(range(12))
        reader.close()
