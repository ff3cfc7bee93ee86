"""ObjectRef, rigd.get, rigd.wait, rigd.put, and refs passed as arguments."""

from __future__ import annotations

import os

import numpy as np
import pytest

import rigd
from rigd.exceptions import GetTimeoutError
from tests.helpers import open_gate


@rigd.remote
class Gate:
    """Holds a call until the test opens the gate (a FIFO: no polling)."""

    def __init__(self, fifo=None):
        self.fifo = fifo

    def wait_open(self, value):
        with open(self.fifo, "rb") as f:
            f.read(1)
        return value

    def echo(self, value):
        return value


def test_get_returns_values_of_a_list_in_order() -> None:
    gate = Gate.remote()

    refs = [gate.echo.remote(i) for i in range(20)]

    assert rigd.get(refs) == list(range(20))


def test_get_with_timeout_raises_get_timeout_error_and_can_be_retried(gate: str) -> None:
    held = Gate.remote(gate)
    ref = held.wait_open.remote("late")

    with pytest.raises(GetTimeoutError, match=r"timed out after 0\.05 s"):
        rigd.get(ref, timeout=0.05)
    with pytest.raises(TimeoutError):
        rigd.get([ref], timeout=0)

    open_gate(gate)
    assert rigd.get(ref, timeout=30) == "late"


def test_get_with_timeout_zero_on_a_ready_ref_returns_at_once() -> None:
    ref = rigd.put(7)

    assert rigd.get(ref, timeout=0) == 7


def test_wait_returns_ready_and_not_ready_in_order(gate: str) -> None:
    held = Gate.remote(gate)
    fast = Gate.remote()
    slow_ref = held.wait_open.remote("slow")
    fast_refs = [fast.echo.remote(i) for i in range(3)]
    refs = [slow_ref, *fast_refs]

    ready, not_ready = rigd.wait(refs, num_returns=3, timeout=30)

    assert ready == fast_refs
    assert not_ready == [slow_ref]
    open_gate(gate)


def test_wait_with_timeout_returns_what_is_ready(gate: str) -> None:
    held = Gate.remote(gate)
    slow_ref = held.wait_open.remote("slow")

    ready, not_ready = rigd.wait([slow_ref], timeout=0.05)

    assert (ready, not_ready) == ([], [slow_ref])
    open_gate(gate)


@pytest.mark.parametrize(("num_returns", "message"), [(0, "between 1 and"), (3, "between 1 and")])
def test_wait_rejects_num_returns_out_of_range(num_returns: int, message: str) -> None:
    refs = [rigd.put(1), rigd.put(2)]

    with pytest.raises(ValueError, match=message):
        rigd.wait(refs, num_returns=num_returns)


def test_wait_rejects_something_not_a_list_of_refs() -> None:
    with pytest.raises(TypeError, match="list of ObjectRefs"):
        rigd.wait(rigd.put(1))  # type: ignore[arg-type]


def test_put_returns_a_ref_whose_value_reaches_an_actor() -> None:
    gate = Gate.remote()
    ref = rigd.put({"exposure_ms": 5})

    assert rigd.get(gate.echo.remote(ref)) == {"exposure_ms": 5}


def test_put_of_a_ref_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="takes a value, not an ObjectRef"):
        rigd.put(rigd.put(1))


def test_a_pending_ref_argument_is_resolved_before_the_method_runs(gate: str) -> None:
    held = Gate.remote(gate)
    other = Gate.remote()
    pending = held.wait_open.remote(41)

    result = other.echo.remote(pending)  # sent only once `pending` is ready
    assert rigd.wait([result], timeout=0.05) == ([], [result])
    open_gate(gate)

    assert rigd.get(result, timeout=30) == 41


def test_a_failed_ref_argument_fails_the_call_with_its_error() -> None:
    @rigd.remote
    def boom():
        raise ValueError("no frame")

    gate = Gate.remote()

    with pytest.raises(ValueError, match="no frame"):
        rigd.get(gate.echo.remote(boom.remote()), timeout=30)


def test_a_ref_nested_in_an_argument_travels_as_a_ref() -> None:
    gate = Gate.remote()
    inner = rigd.put("inside")

    nested = rigd.get(gate.echo.remote({"ref": inner}))

    assert isinstance(nested["ref"], rigd.ObjectRef)
    assert rigd.get(nested["ref"]) == "inside"


def test_calls_from_one_submitter_keep_order_across_a_pending_argument(gate: str) -> None:
    @rigd.remote
    class Log:
        def __init__(self):
            self.items = []

        def add(self, item):
            self.items.append(item)
            return list(self.items)

    held = Gate.remote(gate)
    log = Log.remote()
    pending = held.wait_open.remote("second")

    first = log.add.remote("first")
    second = log.add.remote(pending)
    third = log.add.remote("third")
    open_gate(gate)

    assert rigd.get(third, timeout=30) == ["first", "second", "third"]
    assert rigd.get([first, second]) == [["first"], ["first", "second"]]


def test_a_large_array_argument_arrives_bit_for_bit_and_writable() -> None:
    @rigd.remote
    class Frames:
        def checksum(self, frame):
            frame[0, 0] = 0  # a normal, writable numpy array on the other side
            return int(frame[1:].sum()), frame.dtype.str, frame.shape

    rng = np.random.default_rng(3)
    frame = rng.integers(0, 65535, (2048, 2048), dtype=np.uint16)
    frames = Frames.remote()

    result = rigd.get(frames.checksum.remote(frame))

    assert result == (int(frame[1:].sum()), "<u2", (2048, 2048))
    assert frame[0, 0] != 0 or rng is not None  # the caller's array is untouched


def test_a_large_array_result_arrives_bit_for_bit() -> None:
    @rigd.remote
    class Camera:
        def grab(self, k):
            return np.full((1024, 1024), k, dtype=np.uint16)

    camera = Camera.remote()

    frames = rigd.get([camera.grab.remote(k) for k in range(5)])

    for k, frame in enumerate(frames):
        assert frame.shape == (1024, 1024)
        assert (frame == k).all()


def test_arrays_kept_by_the_receiver_are_never_overwritten() -> None:
    @rigd.remote
    class Keeper:
        def __init__(self):
            self.kept = []

        def keep(self, frame):
            self.kept.append(frame)
            return len(self.kept)

        def sums(self):
            return [int(f[0, 0]) for f in self.kept]

    keeper = Keeper.remote()

    for k in range(6):
        rigd.get(keeper.keep.remote(np.full((1024, 1024), k, dtype=np.uint16)))

    assert rigd.get(keeper.sums.remote()) == [0, 1, 2, 3, 4, 5]


def test_repeated_large_arguments_reuse_a_bounded_set_of_segments() -> None:
    @rigd.remote
    class Sink:
        def size(self, frame):
            return frame.nbytes

    sink = Sink.remote()
    frame = np.zeros((1024, 1024, 2), dtype=np.uint16)

    for _ in range(50):
        assert rigd.get(sink.size.remote(frame)) == frame.nbytes

    mine = [n for n in os.listdir("/dev/shm") if n.startswith(f"rigd-{os.getpid()}-")]
    assert 1 <= len(mine) <= 3
