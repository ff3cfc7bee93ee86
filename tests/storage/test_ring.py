"""FrameRing with real processes: every frame, in order, bit for bit; no torn frame."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import threading
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rigd.exceptions import (
    EndOfStream,
    RingBrokenError,
    RingClosedError,
    RingLayoutError,
    WouldBlock,
)
from rigd.storage import FrameRing, ReaderPolicy, remove_stale_rings
from rigd.storage._ring import LAYOUT_VERSION
from tests.helpers import pid_alive, wait_until

CTX = mp.get_context("spawn")
_names = iter(range(10**9))


def ring_name() -> str:
    return f"t{os.getpid()}-{next(_names)}"


def pattern(k: int, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """Frame k: distinct in every element and from every other frame."""
    info = np.iinfo(dtype)
    base = np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)
    return ((base * 31 + k * 1_000_003) % (int(info.max) + 1)).astype(dtype)


def write_frames(
    name: str,
    n: int,
    shape: tuple[int, ...],
    dtype: str,
    started: Any,
    then_close: bool = True,
    in_place: bool = False,
) -> None:
    """Child process: write ``n`` pattern frames (frame id k), then close."""
    ring = FrameRing.attach(name)
    writer = ring.writer()
    started.set()
    for k in range(n):
        if in_place:
            with writer.slot(frame_id=k) as view:
                view[...] = pattern(k, shape, np.dtype(dtype))
        else:
            writer.put(pattern(k, shape, np.dtype(dtype)), frame_id=k, timeout=30)
    if then_close:
        writer.close()
    else:
        started.wait()  # never returns in time: the test kills this process
        time.sleep(60)


def read_lossless(name: str, attached: Any, ready: Any, hold: Any) -> None:
    """Child process: attach a lossless reader and hold its first frame for ever."""
    ring = FrameRing.attach(name)
    reader = ring.reader("lossless")
    attached.set()
    reader.get(timeout=30)
    ready.set()
    hold.wait(60)


def start(target: Any, *args: Any) -> Any:
    process = CTX.Process(target=target, args=args, daemon=True)
    process.start()
    return process


# -- the property -------------------------------------------------------------------


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    slot_count=st.integers(2, 6),
    shape=st.sampled_from([(1,), (7,), (16, 16), (33, 5), (64, 64)]),
    dtype=st.sampled_from(["uint8", "uint16", "int32"]),
    n=st.integers(1, 60),
    lossless_delay_us=st.sampled_from([0, 200]),
    latest_hold_us=st.sampled_from([0, 500, 3000]),
    in_place=st.booleans(),
)
def test_lossless_sees_every_frame_in_order_bit_for_bit_and_latest_never_a_torn_one(
    slot_count: int,
    shape: tuple[int, ...],
    dtype: str,
    n: int,
    lossless_delay_us: int,
    latest_hold_us: int,
    in_place: bool,
) -> None:
    with FrameRing.create(ring_name(), shape, dtype, slot_count=slot_count) as ring:
        lossless = ring.reader("lossless")
        latest = ring.reader("latest")
        started = CTX.Event()
        writer = start(write_frames, ring.name, n, shape, dtype, started, True, in_place)

        seen = []
        for frame in lossless:
            assert frame.frame_id == len(seen)
            assert np.array_equal(frame.array, pattern(frame.frame_id, shape, np.dtype(dtype)))
            seen.append(frame.frame_id)
            if lossless_delay_us:
                time.sleep(lossless_delay_us / 1e6)  # a slow consumer, not a wait
            try:
                latest_frame = latest.get_nowait()
            except (WouldBlock, EndOfStream):
                continue
            copy = latest_frame.array.copy()
            time.sleep(latest_hold_us / 1e6)  # holding the frame while the writer goes on
            if latest.release(latest_frame):
                assert np.array_equal(copy, pattern(latest_frame.frame_id, shape, np.dtype(dtype)))
        writer.join(30)

        assert seen == list(range(n))
        stats = ring.statistics()
        assert stats.frames_written == n
        (lossless_stats, latest_stats) = stats.readers
        assert lossless_stats.frames_read == n
        assert lossless_stats.frames_dropped == 0
        assert latest_stats.frames_torn <= latest_stats.frames_dropped
        lossless.close()
        latest.close()


# -- behaviour -------------------------------------------------------------------------


def test_latest_reader_gets_the_newest_frame_and_counts_what_it_skipped() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=4) as ring:
        writer = ring.writer()
        latest = ring.reader(ReaderPolicy.LATEST)
        for k in range(3):
            writer.put(pattern(k, (4,), np.uint16), frame_id=k)

        with latest.read(timeout=1) as frame:
            assert frame.frame_id == 2

        assert ring.statistics().readers[0].frames_dropped == 2


def test_a_latest_reader_lapped_while_holding_a_frame_reports_it_torn() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=2) as ring:
        writer = ring.writer()
        latest = ring.reader("latest")
        writer.put(pattern(0, (4,), np.uint16), frame_id=0)
        frame = latest.get(timeout=1)

        for k in range(1, 4):  # the writer wraps around the 2 slots
            writer.put(pattern(k, (4,), np.uint16), frame_id=k)

        assert latest.release(frame) is False
        assert frame.torn
        assert ring.statistics().readers[0].frames_torn == 1


def test_a_latest_reader_never_holds_the_writer_back() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=2) as ring:
        writer = ring.writer()
        latest = ring.reader("latest")

        for k in range(10):
            writer.put_nowait(pattern(k, (4,), np.uint16), frame_id=k)

        assert latest.get(timeout=1).frame_id == 9


def test_a_lossless_reader_a_whole_ring_behind_holds_the_writer_back() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=2) as ring:
        writer = ring.writer()
        reader = ring.reader()
        writer.put(pattern(0, (4,), np.uint16))
        writer.put(pattern(1, (4,), np.uint16))

        with pytest.raises(WouldBlock, match="a lossless reader is a whole ring behind"):
            writer.put_nowait(pattern(2, (4,), np.uint16))
        with reader.read(timeout=1):
            pass
        writer.put_nowait(pattern(2, (4,), np.uint16))
        assert ring.statistics().fill == 1.0


def test_two_lossless_readers_each_see_every_frame() -> None:
    with FrameRing.create(ring_name(), (8,), "uint8", slot_count=3) as ring:
        a, b = ring.reader(), ring.reader()
        started = CTX.Event()
        writer = start(write_frames, ring.name, 25, (8,), "uint8", started)

        got_a, got_b = [], []
        for _ in range(25):
            for reader, got in ((a, got_a), (b, got_b)):
                with reader.read(timeout=30) as frame:
                    got.append(frame.frame_id)
        writer.join(30)

        assert got_a == got_b == list(range(25))


def test_an_abandoned_in_place_slot_commits_no_frame() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=2) as ring:
        writer = ring.writer()
        reader = ring.reader()

        def fill_then_fail() -> None:
            with writer.slot() as view:
                view[...] = 7
                raise RuntimeError("sensor error")

        with pytest.raises(RuntimeError, match="sensor error"):
            fill_then_fail()
        with writer.slot(frame_id=42) as view:
            view[...] = 9

        with reader.read(timeout=1) as frame:
            assert (frame.frame_id, int(frame.array[0])) == (42, 9)
        assert ring.statistics().frames_written == 1


def test_frames_are_read_only_views_of_the_slot() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=2) as ring:
        writer = ring.writer()
        reader = ring.reader()
        writer.put(pattern(0, (4,), np.uint16))

        frame = reader.get(timeout=1)

        with pytest.raises(ValueError, match="read-only"):
            frame.array[0] = 1
        assert frame.array.base is not None  # a view, not a copy
        reader.release(frame)


def test_end_of_stream_comes_after_the_last_frame_and_differs_from_a_timeout() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=4) as ring:
        writer = ring.writer()
        reader = ring.reader()
        with pytest.raises(TimeoutError, match="no frame"):
            reader.get(timeout=0.02)

        writer.put(pattern(0, (4,), np.uint16), frame_id=0)
        writer.put(pattern(1, (4,), np.uint16), frame_id=1)
        writer.close()

        assert [f.frame_id for f in reader] == [0, 1]
        with pytest.raises(EndOfStream, match="closed by its writer"):
            reader.get(timeout=1)


def test_get_before_releasing_the_previous_frame_is_an_error() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=4) as ring:
        writer = ring.writer()
        reader = ring.reader()
        writer.put(pattern(0, (4,), np.uint16))
        writer.put(pattern(1, (4,), np.uint16))
        reader.get(timeout=1)

        with pytest.raises(RuntimeError, match="release the frame you hold"):
            reader.get(timeout=1)


def test_a_second_live_writer_is_refused() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16") as ring:
        ring.writer()
        started = CTX.Event()
        other = CTX.Process(target=write_frames, args=(ring.name, 1, (4,), "uint16", started))

        other.start()
        other.join(30)

        assert other.exitcode != 0
        assert not started.is_set()


def test_all_reader_slots_taken_is_a_clear_error() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", max_readers=1) as ring:
        ring.reader()

        with pytest.raises(
            RuntimeError, match="all 1 reader slots taken; create it with a larger max_readers"
        ):
            ring.reader()


def test_using_a_closed_reader_is_a_ring_closed_error() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16") as ring:
        reader = ring.reader()
        reader.close()

        with pytest.raises(RingClosedError):
            reader.get(timeout=0)


# -- dead peers ------------------------------------------------------------------------


def test_a_reader_whose_writer_is_sigkilled_drains_then_learns_why() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=8) as ring:
        reader = ring.reader()
        started = CTX.Event()
        writer = start(write_frames, ring.name, 3, (4,), "uint16", started, False)
        wait_until(lambda: ring.statistics().frames_written == 3, what="3 frames")

        os.kill(writer.pid, signal.SIGKILL)
        writer.join(30)

        for expected in (0, 1, 2):
            with reader.read(timeout=5) as frame:
                assert frame.frame_id == expected
        with pytest.raises(RingBrokenError, match=rf"\(pid {writer.pid}\) died"):
            reader.get(timeout=10)


def test_a_sigkilled_lossless_reader_stops_holding_the_writer_back() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=2) as ring:
        writer = ring.writer()
        attached, ready, hold = CTX.Event(), CTX.Event(), CTX.Event()
        reader = start(read_lossless, ring.name, attached, ready, hold)
        assert attached.wait(30)
        writer.put(pattern(0, (4,), np.uint16))
        assert ready.wait(30)
        writer.put(pattern(1, (4,), np.uint16))
        with pytest.raises(WouldBlock):
            writer.put_nowait(pattern(2, (4,), np.uint16))

        os.kill(reader.pid, signal.SIGKILL)
        reader.join(30)

        writer.put(pattern(2, (4,), np.uint16), timeout=5)  # released within the check interval
        stats = ring.statistics()
        assert stats.readers_lost == 1
        assert not stats.readers[0].alive


# -- bad input -------------------------------------------------------------------------


def test_put_with_the_wrong_shape_names_expected_and_got() -> None:
    with FrameRing.create(ring_name(), (4, 4), "uint16") as ring:
        writer = ring.writer()

        with pytest.raises(
            ValueError,
            match=r"^frame of shape \(4, 5\) and dtype uint16 does not "
            r"fit ring 'rigd-\d+-ring-.*', which holds shape \(4, 4\) and dtype "
            r"uint16$",
        ):
            writer.put(np.zeros((4, 5), np.uint16))


def test_put_with_the_wrong_dtype_names_expected_and_got() -> None:
    with FrameRing.create(ring_name(), (4, 4), "uint16") as ring:
        writer = ring.writer()

        with pytest.raises(ValueError, match=r"dtype float32 does not fit.*dtype uint16$"):
            writer.put(np.zeros((4, 4), np.float32))


def test_a_ring_larger_than_free_shm_fails_before_allocating() -> None:
    free = os.statvfs("/dev/shm").f_bavail * os.statvfs("/dev/shm").f_frsize
    slots = free // (2048 * 2048 * 2) + 2
    name = ring_name()

    with pytest.raises(OSError, match=r"MiB free; use fewer or smaller slots, or enlarge"):
        FrameRing.create(name, (2048, 2048), "uint16", slot_count=int(slots))

    assert not os.path.exists(f"/dev/shm/{FrameRing.segment_name(name)}")


def test_attaching_a_missing_ring_is_a_clear_error() -> None:
    with pytest.raises(FileNotFoundError, match="no ring named 'rigd-1-ring-nope'"):
        FrameRing.attach("rigd-1-ring-nope")


def test_attaching_a_segment_that_is_not_a_ring_is_a_layout_error() -> None:
    name = f"rigd-{os.getpid()}-ring-notaring"
    with open(f"/dev/shm/{name}", "wb") as f:
        f.write(b"x" * 8192)
    try:
        with pytest.raises(RingLayoutError, match="is not a rigd frame ring"):
            FrameRing.attach(name)
    finally:
        os.unlink(f"/dev/shm/{name}")


def test_attaching_a_ring_of_another_layout_version_is_a_layout_error() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16") as ring:
        ring._hdr.version = 99

        with pytest.raises(
            RingLayoutError, match=rf"layout version 99, this rigd reads version {LAYOUT_VERSION}"
        ):
            FrameRing.attach(ring.name)
        ring._hdr.version = LAYOUT_VERSION


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"slot_count": 1}, r"slot_count must be an int >= 2, got 1"),
        ({"shape": (0, 4)}, r"shape must have 1 to 8 positive sizes"),
        ({"dtype": object}, r"dtype must be a plain numeric dtype"),
        ({"name": "a/b"}, r"ring name must be letters, digits"),
    ],
)
def test_invalid_ring_parameters_are_rejected(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {"name": ring_name(), "shape": (4,), "dtype": "uint16", **kwargs}

    with pytest.raises(ValueError, match=message):
        FrameRing.create(**args)


# -- lifecycle ---------------------------------------------------------------------------


def _attach_and_exit(name: str) -> None:
    ring = FrameRing.attach(name)
    ring.reader().close()
    ring.close()


def test_a_process_that_attaches_and_exits_does_not_unlink_the_ring() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16") as ring:
        child = start(_attach_and_exit, ring.name)
        child.join(30)

        assert child.exitcode == 0
        assert os.path.exists(f"/dev/shm/{ring.name}")


def test_the_owner_unlinks_the_ring_and_nothing_is_left() -> None:
    ring = FrameRing.create(ring_name(), (64, 64), "uint16")
    ring.writer().put(np.zeros((64, 64), np.uint16))

    ring.unlink()
    ring.close()

    assert not os.path.exists(f"/dev/shm/{ring.name}")


def _create_and_die(name: str, created: Any) -> None:
    FrameRing.create(name, (4,), "uint16")
    created.set()
    os.kill(os.getpid(), signal.SIGKILL)


def test_rings_of_a_crashed_owner_are_found_and_removed() -> None:
    created = CTX.Event()
    owner = start(_create_and_die, "orphan", created)
    owner.join(30)
    segment = FrameRing.segment_name("orphan", owner.pid)
    assert created.is_set()
    assert os.path.exists(f"/dev/shm/{segment}")
    assert not pid_alive(owner.pid)

    removed = remove_stale_rings()

    assert segment in removed
    assert not os.path.exists(f"/dev/shm/{segment}")


# -- low-latency readers -----------------------------------------------------------------


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime + usage.ru_stime


def test_a_low_latency_reader_sees_every_frame_in_order() -> None:
    with FrameRing.create(ring_name(), (16,), "uint16", slot_count=4) as ring:
        reader = ring.reader("lossless", low_latency=True)
        started = CTX.Event()
        writer = start(write_frames, ring.name, 200, (16,), "uint16", started)

        ids = []
        for frame in reader:
            assert np.array_equal(frame.array, pattern(frame.frame_id, (16,), np.uint16))
            ids.append(frame.frame_id)
        writer.join(30)

        assert ids == list(range(200))


def test_an_idle_low_latency_reader_does_not_spin() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16") as ring:
        reader = ring.reader(low_latency=True)
        before = _cpu_seconds()

        with pytest.raises(TimeoutError):
            reader.get(timeout=0.5)

        assert _cpu_seconds() - before < 0.05


def test_a_low_latency_reader_stops_spinning_when_the_stream_stalls() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=8) as ring:
        writer = ring.writer()
        reader = ring.reader(low_latency=True)
        for k in range(5):  # a regular stream, then nothing
            writer.put(pattern(k, (4,), np.uint16), frame_id=k)
            with reader.read(timeout=1):
                pass
        before = _cpu_seconds()

        with pytest.raises(TimeoutError):
            reader.get(timeout=0.5)

        assert _cpu_seconds() - before < 0.05


def test_a_low_latency_reader_gets_a_frame_committed_long_after_its_announcement() -> None:
    # A camera that opens its slot and then waits for the hardware: the reader
    # spins briefly, then sleeps until the commit instead of spinning on.
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=4) as ring:
        writer = ring.writer()
        reader = ring.reader(low_latency=True)
        got: list[int] = []
        thread = threading.Thread(target=lambda: got.append(reader.get(timeout=30).frame_id))
        with writer.slot(frame_id=7) as view:
            thread.start()
            wait_until(lambda: ring._hdr.waiting[reader.index] == 1, what="the reader to sleep")
            view[:] = 7
        thread.join(30)

        assert got == [7]
        assert not thread.is_alive()


def test_a_frame_taken_announces_one_on_the_rings_it_is_passed_on_to() -> None:
    with (
        FrameRing.create(ring_name(), (4,), "uint16") as inputs,
        FrameRing.create(ring_name(), (1,), "float64") as outputs,
    ):
        source = inputs.writer()
        reader = inputs.reader()
        result = outputs.writer()
        reader.announce_on(result)
        source.put(pattern(0, (4,), np.uint16))
        assert outputs._hdr.announced == 0

        with reader.read(timeout=5):
            # The result is announced as soon as its input is taken ...
            assert outputs._hdr.announced == outputs._hdr.head + 1
        # ... announcing it again changes nothing ...
        result.announce()
        assert outputs._hdr.announced == outputs._hdr.head + 1
        # ... and its commit fulfils the announcement.
        result.put(np.ones(1))
        assert outputs._hdr.announced == outputs._hdr.head == 1


def test_a_second_slot_cannot_open_before_the_first_is_committed() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16") as ring:
        writer = ring.writer()
        reader = ring.reader()
        with writer.slot(frame_id=1) as view:
            view[:] = 1
            with pytest.raises(RuntimeError, match="commit or abandon the open slot"):
                writer.put(pattern(2, (4,), np.uint16))
        writer.put(pattern(2, (4,), np.uint16), frame_id=2)

        ids = []
        for _ in range(2):
            with reader.get(timeout=5) as frame:
                ids.append(frame.frame_id)
        assert ids == [1, 2]


def test_a_frame_is_released_at_the_end_of_its_with_block() -> None:
    with FrameRing.create(ring_name(), (4,), "uint16", slot_count=2) as ring:
        writer = ring.writer()
        reader = ring.reader()
        for k in range(6):  # three times round a 2-slot ring: only if each is released
            writer.put(pattern(k, (4,), np.uint16), frame_id=k, timeout=5)
            with reader.get(timeout=5) as frame:
                assert frame.frame_id == k
        assert ring.statistics().readers[0].frames_read == 6


def test_a_new_writer_learns_the_last_frame_its_predecessor_committed() -> None:
    with FrameRing.create("prev", (2,), np.int64, slot_count=4) as ring:
        first = ring.writer()
        assert first.previous is None
        for k in range(6):
            first.put(np.full(2, k), frame_id=100 + k, timestamp_ns=5_000 + k)
        # The writer's process died; its successor attaches to the same ring.
        assert ring.writer().previous == (105, 5_005)
