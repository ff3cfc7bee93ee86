"""GPU placement with the simulated inventory: what each actor's process sees."""

from __future__ import annotations

import os
from typing import Any

import pytest

import rigd
from rigd.exceptions import ResourceUnavailableError
from rigd.gpu import inventory
from tests.helpers import wait_until


@rigd.remote
class Probe:
    def environment(self) -> dict[str, Any]:
        return {
            "ids": rigd.get_gpu_ids(),
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "order": os.environ.get("CUDA_DEVICE_ORDER"),
        }


@pytest.fixture
def two_gpus(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setenv("RIGD_FAKE_GPUS", "2")
    return [gpu.uuid for gpu in inventory()]


def test_whole_gpus_are_placed_by_uuid_before_the_actor_starts(two_gpus: list[str]) -> None:
    rigd.init()
    first = Probe.options(num_gpus=1).remote()
    second = Probe.options(num_gpus=1).remote()
    cpu_only = Probe.remote()
    seen = rigd.get([first.environment.remote(), second.environment.remote()])
    assert sorted(s["ids"][0] for s in seen) == [0, 1]
    for env in seen:
        assert env["visible"] == two_gpus[env["ids"][0]]
        assert env["order"] == "PCI_BUS_ID"
    assert rigd.get(cpu_only.environment.remote()) == {"ids": [], "visible": "", "order": None}


def test_fractions_share_a_gpu_up_to_one(two_gpus: list[str]) -> None:
    rigd.init()
    halves = [Probe.options(num_gpus=0.5).remote() for _ in range(3)]
    ids = [rigd.get(h.environment.remote())["ids"] for h in halves]
    assert sorted(ids) == [[0], [0], [1]]  # two halves fill GPU 0, the third takes GPU 1
    both = Probe.options(num_gpus=2).remote()
    # GPU 0 is full and GPU 1 half taken: two whole GPUs must wait.
    wait_until(
        lambda: (
            {a.state for a in rigd.state.list_actors() if a.actor_id == both._actor_id}
            == {"pending"}
        ),
        timeout=10,
    )
    for handle in halves:
        rigd.kill(handle)
    assert sorted(rigd.get(both.environment.remote(), timeout=60)["ids"]) == [0, 1]


def test_a_request_that_can_be_met_later_waits(two_gpus: list[str]) -> None:
    rigd.init()
    holders = [Probe.options(num_gpus=1).remote() for _ in range(2)]
    rigd.get([h.environment.remote() for h in holders])
    waiting = Probe.options(num_gpus=1).remote()
    ref = waiting.environment.remote()
    ready, _ = rigd.wait([ref], timeout=1.0)
    assert ready == []
    infos = {a.actor_id: a for a in rigd.state.list_actors()}
    info = infos[waiting._actor_id]
    assert info.state == "pending"
    assert info.waiting_for == "num_gpus=1: free now GPU 0: 0, GPU 1: 0"
    assert sorted(infos[h._actor_id].gpu_ids for h in holders) == [(0,), (1,)]
    freed = rigd.get(holders[1].environment.remote())["ids"]
    rigd.kill(holders[1])
    assert rigd.get(ref, timeout=60)["ids"] == freed


def test_requests_that_can_never_be_met_fail_at_creation(two_gpus: list[str]) -> None:
    rigd.init(num_gpus=1)  # caps rigd to one of the two GPUs
    with pytest.raises(
        ResourceUnavailableError, match=r"num_gpus=2 \(2 whole GPUs\) but this runtime has 1 GPU"
    ):
        Probe.options(num_gpus=2).remote()
    assert rigd.get(Probe.options(num_gpus=1).remote().environment.remote())["ids"] == [0]


def test_without_gpus_a_gpu_actor_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGD_FAKE_GPUS", "0")
    rigd.init()
    with pytest.raises(ResourceUnavailableError, match="no GPUs"):
        Probe.options(num_gpus=0.25).remote()


@rigd.remote
class Uploads:
    def run(self) -> dict[str, Any]:
        import numpy as np

        from rigd.gpu import DeviceFrames

        frames = DeviceFrames((4, 4), np.uint16)
        host = np.arange(16, dtype=np.uint16).reshape(4, 4)
        device, stream = frames.upload(host)
        with stream:
            total = int(device.sum())
        return {
            "simulated": os.environ.get("RIGD_SIMULATED_GPUS"),
            "on_gpu": frames.on_gpu,
            "same_memory": device is host,
            "total": total,
        }


@rigd.remote
def task_environment(gate: str | None = None) -> dict[str, Any]:
    if gate is not None:
        with open(gate, "rb") as f:  # held here until the test opens the gate
            f.read(1)
    return {
        "ids": rigd.get_gpu_ids(),
        "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "order": os.environ.get("CUDA_DEVICE_ORDER"),
        "pid": os.getpid(),
    }


def test_tasks_hold_gpus_while_they_run(two_gpus: list[str]) -> None:
    rigd.init()
    env = rigd.get(task_environment.options(num_gpus=1).remote())
    assert env["visible"] == two_gpus[env["ids"][0]]
    assert env["order"] == "PCI_BUS_ID"
    both = rigd.get(task_environment.options(num_gpus=2).remote())
    assert sorted(both["ids"]) == [0, 1]
    assert sorted(both["visible"].split(",")) == sorted(two_gpus)
    halves = rigd.get([task_environment.options(num_gpus=0.5).remote() for _ in range(2)])
    assert all(len(h["ids"]) == 1 for h in halves)
    # Each GPU task ran in a process of its own (CUDA reads the variable once).
    assert len({env["pid"], both["pid"], *(h["pid"] for h in halves)}) == 4
    cpu = rigd.get(task_environment.remote())
    assert (cpu["ids"], cpu["visible"]) == ([], "")


def test_a_gpu_task_waits_for_a_gpu_without_holding_back_cpu_tasks(
    two_gpus: list[str], gate: str
) -> None:
    rigd.init(num_cpus=2)
    holder = Probe.options(num_gpus=2).remote()
    rigd.get(holder.environment.remote())
    waiting = task_environment.options(num_gpus=1, num_cpus=0).remote()
    # A CPU task queued behind it runs at once.
    assert rigd.get(task_environment.remote(), timeout=30)["ids"] == []
    ready, _ = rigd.wait([waiting], timeout=0.5)
    assert ready == []  # the GPUs are the actor's
    rigd.kill(holder)
    assert len(rigd.get(waiting, timeout=30)["ids"]) == 1


def test_a_gpu_task_that_can_never_run_fails_at_submission(two_gpus: list[str]) -> None:
    rigd.init()
    with pytest.raises(
        ResourceUnavailableError, match=r"num_gpus=3 \(3 whole GPUs\) but this runtime has 2 GPU"
    ):
        rigd.get(task_environment.options(num_gpus=3).remote(), timeout=30)


def test_on_simulated_gpus_the_same_code_runs_on_numpy(two_gpus: list[str]) -> None:
    rigd.init()
    result = rigd.get(Uploads.options(num_gpus=1).remote().run.remote())
    # Simulated GPUs never reach CUDA: no device check, no pinning, numpy.
    assert result == {"simulated": "1", "on_gpu": False, "same_memory": True, "total": 120}


def test_a_ring_exposes_its_slots_for_pinning() -> None:
    import ctypes
    import mmap

    import numpy as np

    from rigd.storage import FrameRing

    with FrameRing.create("pinme", (64, 64), np.uint16, slot_count=4) as ring:
        address, nbytes = ring.slot_memory()
        assert address % mmap.PAGESIZE == 0
        assert nbytes >= 4 * 64 * 64 * 2
        writer = ring.writer()
        writer.put(np.full((64, 64), 7, np.uint16))
        first = (ctypes.c_uint16 * 4).from_address(address)
        assert list(first) == [7, 7, 7, 7]  # slot 0 starts at the address
        writer.close()


@pytest.mark.gpu
def test_pinned_slots_and_stream_copies_on_a_real_gpu(tmp_path: Any) -> None:
    cupy = pytest.importorskip("cupy", reason="needs CuPy (the gpu extra)")
    import numpy as np

    from rigd.gpu import DeviceFrames, register_pinned
    from rigd.storage import FrameRing

    if not os.environ.get("CUDA_VISIBLE_DEVICES") and cupy.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("no CUDA device")
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "0")
    with FrameRing.create("pinned", (2048, 2048), np.uint16, slot_count=4) as ring:
        unregister = register_pinned(*ring.slot_memory())
        assert unregister is not None
        try:
            frames = DeviceFrames((2048, 2048), np.uint16)
            assert frames.on_gpu
            writer, reader = ring.writer(), ring.reader()
            for k in range(4):
                writer.put(np.full((2048, 2048), k, np.uint16), frame_id=k)
                with reader.read(timeout=5) as frame:
                    device, stream = frames.upload(frame.array)
                with stream:
                    assert int(device.max()) == k
            writer.close()
        finally:
            unregister()
