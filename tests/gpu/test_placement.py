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
    with pytest.raises(ResourceUnavailableError, match=r"num_gpus=2 needs 2 whole GPUs"):
        Probe.options(num_gpus=2).remote()
    assert rigd.get(Probe.options(num_gpus=1).remote().environment.remote())["ids"] == [0]


def test_without_gpus_a_gpu_actor_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIGD_FAKE_GPUS", "0")
    rigd.init()
    with pytest.raises(ResourceUnavailableError, match="no GPUs"):
        Probe.options(num_gpus=0.25).remote()
