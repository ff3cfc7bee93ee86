"""Messages' fast path: plain data as MessagePack, read back as pickle would give it."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
import textwrap
import weakref
from collections import OrderedDict
from enum import IntEnum
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rigd.storage import FrameRing, MessageReader, SerializationError, message_ring_shape
from rigd.storage._oob import _MAGIC, _MAGIC_PLAIN, dumps, loads_from, pack_into


class Colour(IntEnum):
    RED = 1


def round_trip(obj: Any, copy: bool = False) -> tuple[Any, int]:
    """``obj`` packed into an area and read back; and which path packed it."""
    packed = dumps(obj)
    area = bytearray(packed.nbytes)
    pack_into(packed, area)
    return loads_from(memoryview(area), copy=copy), packed.magic


def pickled(obj: Any) -> Any:
    """``obj`` through pickle's path (protocol 5, buffers out of band, read-only)."""
    buffers: list[pickle.PickleBuffer] = []
    stream = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(stream, buffers=[b.raw().toreadonly() for b in buffers])


def structure(obj: Any) -> Any:
    """``obj``'s types, all the way down (what ``==`` does not see: 1 == 1.0 == True)."""
    if isinstance(obj, list | tuple):
        return type(obj), [structure(x) for x in obj]
    if isinstance(obj, dict):
        return type(obj), [(structure(k), structure(v)) for k, v in obj.items()]
    if isinstance(obj, np.ndarray):
        return type(obj), obj.dtype, obj.shape, obj.flags.f_contiguous
    if isinstance(obj, np.generic):
        return type(obj), obj.dtype
    return type(obj)


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
keys = st.none() | st.booleans() | st.integers() | st.text(max_size=4) | st.tuples(st.integers())
plain = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(plain)
def test_plain_data_reads_back_equal_to_pickle_and_of_the_same_types(obj: Any) -> None:
    value, _ = round_trip(obj)
    expected = pickled(obj)
    assert value == expected
    assert structure(value) == structure(expected)


def test_arrays_and_numpy_scalars_keep_dtype_shape_and_order_on_the_fast_path() -> None:
    grid = np.arange(12, dtype=np.int16).reshape(3, 4)
    obj = {
        "c": grid,
        "f": np.asfortranarray(grid),
        "strided": grid[:, ::2],  # not contiguous: read back C-contiguous, as pickle does
        "empty": np.zeros((0, 3), ">f4"),
        "zero_d": np.array(2.5),
        "when": np.arange(3).astype("M8[ms]"),
        "text": np.array(["ab", "c"]),
        "scalars": (np.float32(1.5), np.int64(-3), np.bool_(True), np.datetime64(5, "s")),
        "stamp": (0.5, (7, "row")),
        "raw": pickle.PickleBuffer(b"x" * 100),
    }
    value, magic = round_trip(obj)
    assert magic == _MAGIC_PLAIN
    expected = pickled(obj)
    assert structure(value) == structure(expected)
    for name in ("c", "f", "strided", "empty", "zero_d", "when", "text"):
        np.testing.assert_array_equal(value[name], obj[name])
        assert not value[name].flags.writeable  # read-only views of the area
    assert value["f"].flags.f_contiguous
    assert value["scalars"] == expected["scalars"]
    assert isinstance(value["raw"], memoryview)
    assert value["raw"].readonly
    assert value["raw"] == b"x" * 100
    copied, _ = round_trip(obj, copy=True)
    assert copied["c"].flags.writeable
    np.testing.assert_array_equal(copied["f"], grid)


def test_what_is_not_plain_data_is_pickled_as_before() -> None:
    cycle: list[Any] = [1]
    cycle.append(cycle)
    records = np.zeros(2, [("t", "<f8"), ("row", "<i4")])
    for obj in (
        OrderedDict(a=1),
        Colour.RED,
        2**80,
        {"records": records},
        np.array([{"a": 1}], dtype=object),
        {1, 2},
        "\udc80",  # not valid UTF-8: MessagePack refuses it, pickle does not
        cycle,
    ):
        value, magic = round_trip(obj)
        assert magic == _MAGIC, obj
        if obj is cycle:
            assert value[1] is value  # pickle keeps the cycle
        elif isinstance(obj, np.ndarray):
            assert value[0] == {"a": 1}
        elif isinstance(obj, dict) and "records" in obj:
            assert value["records"].dtype == records.dtype
        else:
            assert value == obj
            assert type(value) is type(obj)


def test_the_fast_paths_documented_differences_from_pickle() -> None:
    shared = [1, 2]
    array = np.arange(4.0)
    value, magic = round_trip(
        {
            "ba": bytearray(b"ab"),
            "mv": memoryview(b"cd"),
            "twice": (shared, shared),
            "a": array,
            "b": array,
        }
    )
    assert magic == _MAGIC_PLAIN
    assert value["ba"] == b"ab"
    assert type(value["ba"]) is bytes
    assert value["mv"] == b"cd"
    assert type(value["mv"]) is bytes
    first, second = value["twice"]
    assert first == second == [1, 2]
    assert first is not second
    assert value["a"].ctypes.data == value["b"].ctypes.data  # one buffer, two views


def test_a_damaged_area_is_refused_with_an_error_naming_it() -> None:
    packed = dumps({"t": 1, "data": np.arange(10)})
    area = bytearray(packed.nbytes)
    pack_into(packed, area)
    stream_at = 16 + 16 * len(packed.buffers)
    area[stream_at : stream_at + len(packed.stream)] = b"\xc7\x01\x63" + b"\0" * (
        len(packed.stream) - 3
    )  # an extension type no encoder writes
    with pytest.raises(SerializationError, match=r"could not be decoded .*damaged"):
        loads_from(memoryview(area))
    area[4:8] = (10**6).to_bytes(4, "little")  # a buffer count no area holds
    with pytest.raises(SerializationError, match="runs past its area"):
        loads_from(memoryview(area))
    area[0:4] = b"XXXX"
    with pytest.raises(SerializationError, match="bad magic"):
        loads_from(memoryview(area))


def test_plain_messages_from_another_process_keep_types_and_view_the_slot() -> None:
    shape = message_ring_shape(64 * 1024)
    with FrameRing.create("plain", shape, "uint8", slot_count=4, kind="messages") as ring:
        reader = MessageReader.attach(ring)
        code = f"""
            import numpy as np
            from rigd.storage import FrameRing, MessageWriter
            ring = FrameRing.attach({ring.name!r})
            writer = MessageWriter(ring)
            for k in range(3):
                writer.put((k * 0.5, (np.float64(k), {{"row": np.full((2, 3), k, np.uint16)}})),
                           frame_id=k)
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
        start, size = ring.slot_memory()
        for k, message in enumerate(reader):
            t, (dev, fields) = message.value
            assert message.frame_id == k
            assert math.isclose(t, k * 0.5)
            assert type(dev) is np.float64
            assert dev == k
            row = fields["row"]
            assert row.dtype == np.uint16
            assert row.shape == (2, 3)
            assert int(row[1, 2]) == k
            assert start <= row.ctypes.data < start + size  # a view of the slot, no copy
        assert k == 2
        reader.close()


def test_packing_keeps_no_reference_to_the_callers_arrays() -> None:
    big = np.zeros(1000)
    gone = weakref.ref(big)
    packed = dumps({"big": big})
    assert packed.magic == _MAGIC_PLAIN
    del big, packed
    assert gone() is None  # the per-thread encoder holds nothing once done
