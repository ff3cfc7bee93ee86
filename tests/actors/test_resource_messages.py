"""A request no amount of waiting could meet: one sentence naming the actor, the fix."""

from __future__ import annotations

import pytest

import rigd
from rigd.exceptions import ResourceUnavailableError


@rigd.remote
class FrameStats:
    def ping(self) -> str:
        return "pong"


def test_a_named_actor_asking_for_too_many_cpus_is_named_by_its_name() -> None:
    rigd.init(num_cpus=2)
    with pytest.raises(
        ResourceUnavailableError,
        match=r"^actor 'stats' \(FrameStats\) asks for num_cpus=1000 but this runtime has 2 "
        r"CPUs; ask for fewer, or pass rigd\.init\(num_cpus=\.\.\.\)$",
    ):
        FrameStats.options(name="stats", num_cpus=1e3).remote()
    # Nothing was taken: an actor that fits starts under the same name.
    stats = FrameStats.options(name="stats", num_cpus=2).remote()
    assert rigd.get(stats.ping.remote(), timeout=60) == "pong"


def test_a_gpu_actor_on_a_machine_without_gpus_gets_one_clear_sentence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RIGD_FAKE_GPUS", "0")
    rigd.init()
    with pytest.raises(
        ResourceUnavailableError,
        match=r"^actor 'stats' \(FrameStats\) asks for num_gpus=1 \(1 whole GPU\) but this "
        r"runtime has no GPUs; run it on a machine with a GPU \(and no "
        r"rigd\.init\(num_gpus=0\)\), or ask for none$",
    ):
        FrameStats.options(name="stats", num_gpus=1).remote()
    with pytest.raises(
        ResourceUnavailableError,
        match=r"^actor FrameStats asks for num_gpus=0\.5 \(a share of one GPU\) but this "
        r"runtime has no GPUs",
    ):
        FrameStats.options(num_gpus=0.5).remote()
