"""Records and messages through rings, between real processes, and the store by key."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from rigd._exceptions import EndOfStream, WouldBlock
from rigd.storage import (
    FrameRing,
    MessageReader,
    MessageTooLargeError,
    MessageWriter,
    SerializationError,
    Store,
    dtype_text,
    message_ring_shape,
    parse_dtype,
)

RECORD = np.dtype([("t_acq", "<f8"), ("dev", [("t", "<f8"), ("row", "<i4")]), ("xy", "<f4", (2,))])


def in_child(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_a_structured_dtype_round_trips_as_text_with_its_fields_and_padding() -> None:
    aligned = np.dtype([("t", "<f8"), ("x", "<i4"), ("name", "S5")], align=True)
    for dtype in (RECORD, aligned, np.dtype("<u2")):
        assert parse_dtype(dtype_text(dtype)) == dtype
    assert dtype_text("uint16") == "<u2"
    with pytest.raises(TypeError, match="is not a dtype"):
        parse_dtype("nonsense")


def test_records_keep_their_field_names_through_a_ring_into_another_process() -> None:
    with FrameRing.create("records", (3,), RECORD) as ring:
        assert ring.kind == "frames"
        assert ring.dtype == RECORD
        writer = ring.writer()
        rows = np.zeros(3, RECORD)
        rows["t_acq"] = [1.5, 2.5, 3.5]
        rows["dev"]["row"] = [7, 8, 9]
        rows["xy"][:, 1] = 4
        writer.put(rows, frame_id=11)  # structured records are accepted as they are
        out = in_child(
            f"""
            from rigd.storage import FrameRing
            ring = FrameRing.attach({ring.name!r})
            reader = ring.reader("latest")
            with reader.get_at(0) as frame:
                a = frame.array
                print(a.dtype.names, a.dtype["dev"].names, a["dev"]["row"].tolist(),
                      a["xy"][:, 1].tolist(), frame.frame_id)
            reader.close(); ring.close()
            """
        )
        writer.close()
    assert out.strip() == "('t_acq', 'dev', 'xy') ('t', 'row') [7, 8, 9] [4.0, 4.0, 4.0] 11"


@pytest.fixture
def message_ring() -> Iterator[FrameRing]:
    shape = message_ring_shape(64 * 1024)
    with FrameRing.create("messages", shape, "uint8", slot_count=4, kind="messages") as ring:
        yield ring


def test_a_message_from_another_process_arrives_with_its_arrays_viewing_the_slot(
    message_ring: FrameRing,
) -> None:
    reader = MessageReader.attach(message_ring)
    in_child(
        f"""
        import pickle
        import numpy as np
        from rigd.storage import FrameRing, MessageWriter
        ring = FrameRing.attach({message_ring.name!r})
        writer = MessageWriter(ring)
        writer.put({{"rois": [(1, 2), (3, 4)], "trace": np.arange(1000, dtype=np.float32),
                     "raw": pickle.PickleBuffer(b"x" * 5000), "small": b"hi",
                     "stamp": (0.5, (7, "row"))}}, frame_id=3)
        writer.close()
        """
    )
    start, size = message_ring.slot_memory()
    with reader.read(timeout=10) as message:
        value = message.value
        trace, raw = value["trace"], value["raw"]
        assert message.frame_id == 3
        assert value["rois"] == [(1, 2), (3, 4)]
        assert value["stamp"] == (0.5, (7, "row"))
        assert value["small"] == b"hi"
        np.testing.assert_array_equal(trace, np.arange(1000, dtype=np.float32))
        assert not trace.flags.writeable
        assert start <= trace.ctypes.data < start + size  # no copy: a view of the slot
        assert isinstance(raw, memoryview)
        assert raw.readonly
        assert raw == b"x" * 5000
        copied = message.copy()
    assert copied["trace"].flags.writeable
    with pytest.raises(EndOfStream):
        reader.get(timeout=10)  # the writer closed: drained, then the end
    reader.close()


def test_a_message_too_large_or_unpicklable_is_refused_and_nothing_is_sent(
    message_ring: FrameRing,
) -> None:
    writer = MessageWriter(message_ring)
    reader = MessageReader.attach(message_ring)
    with pytest.raises(
        MessageTooLargeError, match=r"larger than the 65536 bytes .*max_message_bytes"
    ):
        writer.put(np.zeros(100_000, np.uint8))
    with pytest.raises(SerializationError, match=r"type dict cannot be pickled .*_thread\.lock"):
        writer.put({"lock": threading.Lock()})
    with pytest.raises(TypeError):  # SerializationError is a TypeError
        writer.put(lambda: None)
    reader_ring = reader._reader
    assert reader_ring.committed == 0
    writer.put("fine")
    assert reader.take(timeout=1) == "fine"
    reader.close()
    writer.close()


def test_message_readers_keep_their_policies(message_ring: FrameRing) -> None:
    writer = MessageWriter(message_ring)
    lossless = MessageReader.attach(message_ring, "lossless")
    latest = MessageReader.attach(message_ring, "latest")
    for k in range(4):
        writer.put({"k": k}, frame_id=k)
    with pytest.raises(WouldBlock):
        writer.put_nowait({"k": 4})  # the lossless reader holds the writer back
    with latest.read(timeout=1) as message:
        assert message.value == {"k": 3}
    assert latest.frames_dropped == 3
    assert [lossless.take(timeout=1)["k"] for _ in range(4)] == [0, 1, 2, 3]
    writer.put({"k": 4}, frame_id=4)
    assert lossless.take(timeout=1) == {"k": 4}
    with (
        FrameRing.create("plain", (4,), "uint8") as plain,
        pytest.raises(ValueError, match="carries frames, not messages"),
    ):
        MessageWriter(plain)
    for endpoint in (lossless, latest, writer):
        endpoint.close()


def test_the_store_shares_arrays_between_processes_without_copies() -> None:
    store = Store(f"/dev/shm/rigd-{os.getpid()}-store-test")
    try:
        big = np.arange(1_000_000, dtype=np.float64)
        store.put("frame", {"data": big, "meta": ("M12", 3)})
        held = store.get("frame")
        assert not held["data"].flags.writeable
        np.testing.assert_array_equal(held["data"], big)
        out = in_child(
            f"""
            from rigd.storage import Store
            store = Store({store.path!r}, run_id="r1")
            value = store.get("frame")
            print(value["meta"], float(value["data"][-1]), store.keys())
            store.put("from_child", {{"ok": True}})
            store.put("kept", 1, keep=True)
            """
        )
        assert out.strip() == "('M12', 3) 999999.0 ['frame']"
        store.put("frame", "replaced")
        np.testing.assert_array_equal(held["data"], big)  # what a reader holds stays valid
        assert store.get("frame") == "replaced"
        assert store.keys() == ["frame", "from_child", "kept"]
        assert store.end_run("r1") == (["from_child"], ["kept"])
        with pytest.raises(KeyError, match="nothing stored under 'gone'"):
            store.get("gone")
        with pytest.raises(TypeError, match="a store key is a string"):
            store.put(3, "x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="too long"):
            store.put("k" * 300, "x")
        with pytest.raises(SerializationError):
            store.put("lock", threading.Lock())
        assert "lock" not in store
        assert [n for n in os.listdir(store.path) if n.startswith(".tmp")] == []
        entries = store.keys()
        for key in entries:
            store.delete(key)
        assert not os.path.exists(store.path)  # the last delete removes the directory
    finally:
        store.remove()
