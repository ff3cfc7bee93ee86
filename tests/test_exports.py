"""Every public name is exported, importable and listed in sorted order."""

from __future__ import annotations

import importlib

import pytest

PUBLIC_MODULES = [
    "rigd",
    "rigd.actor",
    "rigd.actors",
    "rigd.config",
    "rigd.exceptions",
    "rigd.gpu",
    "rigd.pipeline",
    "rigd.service",
    "rigd.state",
    "rigd.storage",
    "rigd.util",
    "rigd.util.scheduling_strategies",
]


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_name_in_all_is_importable_and_sorted(name: str) -> None:
    module = importlib.import_module(name)

    exported = module.__all__

    public = [n for n in exported if not n.startswith("__")]
    assert public == sorted(public)
    for attr in exported:
        assert hasattr(module, attr), f"{name}.{attr} is in __all__ but missing"


def test_the_ray_api_names_are_all_there() -> None:
    import rigd

    names = [
        "init",
        "shutdown",
        "is_initialized",
        "remote",
        "get",
        "wait",
        "put",
        "get_actor",
        "kill",
        "method",
        "get_gpu_ids",
        "ObjectRef",
    ]

    assert [n for n in names if not hasattr(rigd, n)] == []
    assert hasattr(rigd.actor, "exit_actor")
    assert hasattr(rigd.actor, "ActorClass")
    assert hasattr(rigd.actor, "ActorProxy")
    for error in [
        "RigdError",
        "TaskError",
        "ActorDiedError",
        "TaskCancelledError",
        "GetTimeoutError",
    ]:
        assert issubclass(getattr(rigd.exceptions, error), rigd.exceptions.RigdError) or (
            error == "RigdError"
        )
