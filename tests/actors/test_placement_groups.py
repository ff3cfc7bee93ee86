"""Placement groups reserve bundles of the session's CPUs ahead, as Ray's on one node."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import rigd
from rigd.exceptions import ActorDiedError
from rigd.job_config import JobConfig
from rigd.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from tests.helpers import wait_until


@rigd.remote(num_cpus=1)
class Worker:
    def ping(self):
        return "pong"


def in_group(group, index=-1):
    return PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index)


def free_cpus() -> float:
    return float(rigd.available_resources().get("CPU", 0.0))


def test_a_group_holds_its_cpus_and_its_actors_run_on_them_until_it_is_removed() -> None:
    rigd.init(num_cpus=2)
    group = rigd.util.placement_group([{"CPU": 1}, {"CPU": 1}], strategy="PACK")
    assert rigd.get(group.ready(), timeout=10) == group
    assert free_cpus() == 0.0

    inside = Worker.options(scheduling_strategy=in_group(group, 1)).remote()
    older_spelling = Worker.options(placement_group=group).remote()
    outside = Worker.remote()
    assert rigd.get([inside.ping.remote(), older_spelling.ping.remote()], timeout=30) == [
        "pong",
        "pong",
    ]
    waiting = outside.ping.remote()
    ready, _ = rigd.wait([waiting], timeout=0.3)
    assert ready == []  # the pool has no CPU left: the group holds both

    rigd.util.remove_placement_group(group)

    with pytest.raises(ActorDiedError, match="its placement group was removed"):
        rigd.get(inside.ping.remote(), timeout=30)
    assert rigd.get(waiting, timeout=30) == "pong"  # the bundles went back to the pool
    wait_until(lambda: free_cpus() == 1.0, what="the group's CPUs to return")


def test_a_group_that_does_not_fit_waits_and_so_do_its_actors() -> None:
    rigd.init(num_cpus=1)
    holder = Worker.remote()
    assert rigd.get(holder.ping.remote(), timeout=30) == "pong"
    group = rigd.util.placement_group([{"CPU": 1}])
    member = Worker.options(scheduling_strategy=in_group(group)).remote()
    assert group.wait(0.2) is False
    assert rigd.util.placement_group_table(group)["state"] == "PENDING"

    rigd.kill(holder)

    assert group.wait(30) is True
    assert rigd.get(member.ping.remote(), timeout=30) == "pong"


def test_strict_spread_over_several_bundles_is_infeasible_on_one_machine() -> None:
    rigd.init(num_cpus=4)
    spread = rigd.util.placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_SPREAD")
    lone = rigd.util.placement_group([{"CPU": 1}], strategy="STRICT_SPREAD")
    packed = rigd.util.placement_group([{"CPU": 1}, {"CPU": 1}], strategy="STRICT_PACK")

    assert rigd.get([lone.ready(), packed.ready()], timeout=10) == [lone, packed]
    assert spread.wait(0.2) is False
    assert free_cpus() == 1.0
    ready = spread.ready()
    rigd.util.remove_placement_group(spread)
    with pytest.raises(ValueError, match="was removed"):
        rigd.get(ready, timeout=10)


def test_an_actor_that_fits_no_bundle_is_refused_at_remote_in_rays_words() -> None:
    rigd.init(num_cpus=2)
    group = rigd.util.placement_group([{"CPU": 1}])

    with pytest.raises(ValueError, match=r"resource request \{'CPU': 2\} cannot fit into any"):
        Worker.options(num_cpus=2, scheduling_strategy=in_group(group)).remote()
    with pytest.raises(ValueError, match="placement_group_bundle_index 3 is out of range"):
        Worker.options(scheduling_strategy=in_group(group, 3)).remote()
    with pytest.raises(ValueError, match=r"needs the group rigd\.util\.placement_group\(\)"):
        Worker.options(scheduling_strategy=in_group("cameras"))
    with pytest.raises(ValueError, match="only scheduling_strategy"):
        Worker.options(placement_group=group, scheduling_strategy="SPREAD").remote()
    assert rigd.state.list_actors() == []


@pytest.mark.parametrize(
    ("bundles", "options", "words"),
    [
        ([], {}, "non-empty list"),
        ([{}], {}, "non-empty dicts"),
        ([{"CPU": 0}], {}, "only 0 values"),
        ([{"CPU": -1}], {}, "number >= 0"),
        ([{"CPU": True}], {}, "number >= 0"),
        ([{"CPU": 1}], {"strategy": "TIGHT"}, "Invalid placement group strategy"),
        ([{"CPU": 1}], {"lifetime": "forever"}, "either `None` or 'detached'"),
    ],
)
def test_bad_bundles_strategies_and_lifetimes_are_refused_and_reserve_nothing(
    bundles, options, words
) -> None:
    rigd.init(num_cpus=1)
    with pytest.raises(ValueError, match=words):
        rigd.util.placement_group(bundles, **options)
    assert rigd.util.placement_group_table() == {}
    assert free_cpus() == 1.0


def test_a_group_name_is_taken_once_per_namespace_and_freed_by_removal() -> None:
    rigd.init(num_cpus=2, namespace="rig-a")
    first = rigd.util.placement_group([{"CPU": 1}], name="cameras")
    with pytest.raises(ValueError, match="the name is taken in namespace 'rig-a'"):
        rigd.util.placement_group([{"CPU": 1}], name="cameras")
    assert rigd.util.get_placement_group("cameras") == first

    rigd.util.remove_placement_group(first)

    with pytest.raises(ValueError, match="Failed to look up placement group with name: cameras"):
        rigd.util.get_placement_group("cameras")
    again = rigd.util.placement_group([{"CPU": 1}], name="cameras")
    assert again.wait(10) is True


def test_a_drivers_groups_end_with_it_unless_detached() -> None:
    info = rigd.init(num_cpus=2, namespace="rig-a")
    driver = textwrap.dedent(
        f"""
        import rigd
        rigd.init(address={info["address"]!r}, namespace="rig-b")
        kept = rigd.util.placement_group([{{"CPU": 1}}], name="kept", lifetime="detached")
        gone = rigd.util.placement_group([{{"CPU": 1}}], name="gone")
        assert kept.wait(10) and gone.wait(10)
        """
    )
    subprocess.run([sys.executable, "-c", driver], check=True, timeout=60)

    def names() -> set[str]:
        return {row["name"] for row in rigd.util.placement_group_table().values()}

    wait_until(lambda: names() == {"kept"}, what="the driver's non-detached group to go")
    assert free_cpus() == 1.0


def test_job_config_gives_the_namespace_and_refuses_what_one_machine_lacks() -> None:
    with pytest.raises(ValueError, match=r"JobConfig\(runtime_env=...\) configures runtime"):
        JobConfig(runtime_env={"pip": ["numpy"]})
    with pytest.raises(ValueError, match="has no field 'jvm_opts'"):
        JobConfig(jvm_opts=["-Xmx1g"])
    with pytest.raises(TypeError, match=r"job_config must be a rigd\.job_config\.JobConfig"):
        rigd.init(job_config={"ray_namespace": "rig-a"})
    assert not rigd.is_initialized()

    info = rigd.init(job_config=JobConfig(ray_namespace="rig-a", metadata={"rig": "2p"}))

    assert info["namespace"] == "rig-a"


@rigd.remote(num_gpus=1)
class GpuUser:
    def gpu_ids(self):
        return rigd.get_gpu_ids()


def test_an_actor_in_a_gpu_bundle_runs_on_its_gpu_and_the_next_waits_for_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RIGD_FAKE_GPUS", "2")
    rigd.init(num_cpus=2, num_gpus=2)
    group = rigd.util.placement_group([{"GPU": 1}])
    assert group.wait(10) is True
    assert rigd.available_resources()["GPU"] == 1.0

    first = GpuUser.options(placement_group=group).remote()
    second = GpuUser.options(placement_group=group).remote()
    ids = rigd.get(first.gpu_ids.remote(), timeout=30)
    assert len(ids) == 1
    waiting = second.gpu_ids.remote()
    ready, _ = rigd.wait([waiting], timeout=0.3)
    assert ready == []  # the bundle's one GPU is taken

    rigd.kill(first)

    assert rigd.get(waiting, timeout=30) == ids
    assert rigd.available_resources()["GPU"] == 1.0
