"""Named actors are scoped by namespace."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import rigd


@rigd.remote
class Named:
    def __init__(self, label):
        self.label = label

    def whoami(self):
        return self.label


def test_init_namespace_scopes_named_actors() -> None:
    rigd.init(namespace="rig-a")
    camera = Named.options(name="camera").remote("a")

    found = rigd.get_actor("camera")

    assert rigd.get(found.whoami.remote()) == "a"
    assert rigd.get(rigd.get_actor("camera", namespace="rig-a").whoami.remote()) == "a"
    del camera


def test_the_same_name_may_exist_once_per_namespace() -> None:
    rigd.init(namespace="rig-a")
    kept = [
        Named.options(name="camera").remote("in a"),
        Named.options(name="camera", namespace="rig-b").remote("in b"),
    ]

    in_b = rigd.get_actor("camera", namespace="rig-b")

    assert rigd.get(in_b.whoami.remote()) == "in b"
    assert rigd.get(rigd.get_actor("camera").whoami.remote()) == "in a"
    assert len(kept) == 2


def test_a_name_is_not_found_in_another_namespace() -> None:
    rigd.init(namespace="rig-a")
    camera = Named.options(name="camera").remote("a")
    assert rigd.get(camera.whoami.remote()) == "a"

    with pytest.raises(
        ValueError, match=r"Failed to look up actor with name 'camera' in namespace 'rig-b'"
    ):
        rigd.get_actor("camera", namespace="rig-b")


def test_without_a_namespace_each_driver_gets_an_anonymous_one() -> None:
    info = rigd.init()

    assert info["namespace"].startswith("anonymous-")


def test_actors_created_by_actors_share_the_driver_namespace() -> None:
    @rigd.remote
    class Factory:
        def make(self):
            self.made = Named.options(name="made-inside").remote("inner")
            return rigd.get(self.made.whoami.remote())

    rigd.init(namespace="lab")
    factory = Factory.remote()
    assert rigd.get(factory.make.remote()) == "inner"

    assert rigd.get(rigd.get_actor("made-inside", namespace="lab").whoami.remote()) == "inner"


SCRIPT = textwrap.dedent("""
    import rigd

    @rigd.remote
    class Named:
        def whoami(self):
            return "detached"

    Named.options(name="kept", lifetime="detached").remote()
    print(rigd.get(rigd.get_actor("kept").whoami.remote()))
""")


def test_a_detached_actor_of_an_embedded_runtime_ends_with_its_driver() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )

    assert done.stdout == "detached\n"
    assert "Traceback" not in done.stderr


def test_a_named_actor_whose_handles_are_all_gone_is_collected_as_in_ray() -> None:
    rigd.init()
    camera = Named.options(name="camera").remote("a")
    assert rigd.get(camera.whoami.remote()) == "a"

    del camera

    def gone() -> bool:
        return rigd.state.list_actors(state="dead") != []

    from tests.helpers import wait_until

    wait_until(gone, what="the named actor to be collected")
    with pytest.raises(ValueError, match="Failed to look up actor with name 'camera'"):
        rigd.get_actor("camera")
