"""A ``ray`` name shim over rigd, for bench/ray_compat.py (never installed).

``import ray`` gives rigd's API under Ray's names. Anything rigd does not
have is an ``OutOfScope`` stand-in: importing it works, using it raises
``OutOfScope`` with the name, which the runner counts as out of scope.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import types
from typing import Any

import rigd
from rigd import *  # noqa: F403 - the shim is rigd under Ray's name
from rigd import actor, exceptions, util
from rigd.actors import run_locally

# This module is named ``ray``: rigd's own Ray backend (rigd[cluster]) must
# not take it for Ray. Every process that imports the shim runs rigd's calls
# on the one-machine runtime, which is what the runner measures.
run_locally()


def init(*args: Any, _system_config: Any = None, **kwargs: Any) -> Any:
    """``rigd.init`` taking Ray's private init arguments.

    ``_system_config`` holds Ray's internal tuning (raylet, GCS, object
    store), which has no meaning for rigd: it is dropped. Ray 1.x's
    ``_default_actor_lifetime`` (now ``JobConfig``) is out of scope.
    """
    if "_default_actor_lifetime" in kwargs:
        raise OutOfScope(
            "dropped by modern Ray: ray.init(_default_actor_lifetime) (Ray 2 takes "
            "JobConfig(default_actor_lifetime=...))"
        )
    for name in [k for k in kwargs if k.startswith("_")]:
        raise OutOfScope(f"Ray internals: ray.init({name})")
    if kwargs.get("address") == ONE_NODE:
        kwargs.pop("address")
        kwargs.update(_one_node)
    return rigd.init(*args, **kwargs)


#: The address of the runner's one-node ``Cluster`` (see the conftest).
ONE_NODE = "one-node-cluster"
#: ``num_cpus``/``num_gpus`` of that cluster's one node.
_one_node: dict[str, Any] = {}

#: Ray names rigd lacks that are Ray's implementation or a cluster, by prefix,
#: with the out-of-scope class the runner counts them under. Any other
#: missing name is Ray's public API that rigd lacks: the test fails.
_CLASSES = (
    ("ray.experimental.set_resource", "dropped by modern Ray"),
    ("ray.experimental.state", "object store"),
    ("ray.util.state.list_objects", "object store"),
    ("ray.cluster_utils", "multi-node cluster"),
    ("ray.util.client", "multi-node cluster"),
    ("ray._", "Ray internals"),
    ("ray.worker", "Ray internals"),
    ("ray.state", "Ray internals"),
    ("ray.actor._", "Ray internals"),
    ("ray.ObjectRef.", "Ray internals"),  # _on_completed, from_random, nil: core worker
)


class MissingFromRigdError(NotImplementedError):
    """A name of Ray's public API that rigd lacks (counted as a failure)."""


def refuse(name: str) -> Any:
    """Raise for the Ray name ``name``: OutOfScope with its class, else MissingFromRigdError."""
    for prefix, kind in _CLASSES:
        if name.startswith(prefix):
            raise OutOfScope(f"{kind}: {name}")
    raise MissingFromRigdError(f"rigd lacks Ray's {name}")


ObjectRefGenerator = rigd.ObjectRefGenerator
DynamicObjectRefGenerator = rigd.ObjectRefGenerator


class OutOfScope(Exception):  # noqa: N818 - the runner reads this name
    """A Ray name that rigd does not offer (cluster, internals)."""


class _Missing:
    """Stands for a Ray name rigd lacks; any use raises OutOfScope."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        refuse(self._name)

    __call__ = _refuse
    __enter__ = _refuse
    __iter__ = _refuse

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Missing(f"{self._name}.{name}")

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        return (object,)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_name":
            object.__setattr__(self, name, value)
        else:
            self._refuse()


class _Provided(types.ModuleType):
    """One of rigd's modules under Ray's name; names rigd lacks are ``_Missing``."""

    def __init__(self, name: str, module: types.ModuleType) -> None:
        super().__init__(name)
        self.__dict__["_module"] = module

    def __getattr__(self, name: str) -> Any:
        module = self.__dict__["_module"]
        try:
            return getattr(module, name)
        except AttributeError:
            if name.startswith("__"):
                raise
            return _Missing(f"{self.__name__}.{name}")


exceptions = _Provided("ray.exceptions", exceptions)  # type: ignore[assignment]
actor = _Provided("ray.actor", actor)  # type: ignore[assignment]
util = _Provided("ray.util", util)  # type: ignore[assignment]
state = _Provided("ray.state", rigd.state)
_raylet_names = types.ModuleType("ray._raylet")
_raylet_names.ObjectRef = rigd.ObjectRef  # type: ignore[attr-defined]
_raylet_names.ObjectRefGenerator = rigd.ObjectRefGenerator  # type: ignore[attr-defined]
_raylet = _Provided("ray._raylet", _raylet_names)
# Ray's public ray.available_resources, which Ray's tests import from here;
# the module's other names are Ray's internals.
_state_names = types.ModuleType("ray._private.state")
_state_names.available_resources = rigd.available_resources  # type: ignore[attr-defined]
_state_names.cluster_resources = rigd.cluster_resources  # type: ignore[attr-defined]
_private_state = _Provided("ray._private.state", _state_names)


class _PrivateRefMethod:
    """Ray's private ``ObjectRef`` methods (``_on_completed``, ...): out of scope."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        return _Missing(f"ray.ObjectRef.{self._name}")


for _private in ("_on_completed", "from_random", "is_nil", "nil"):
    if not hasattr(rigd.ObjectRef, _private):
        setattr(rigd.ObjectRef, _private, _PrivateRefMethod(_private))


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return _Missing(f"ray.{name}")


_PROVIDED = {
    "ray.exceptions": exceptions,
    "ray.actor": actor,
    "ray.util": util,
    "ray.state": state,
    "ray._raylet": _raylet,
    "ray._private.state": _private_state,
}


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Missing(f"{self.__name__}.{name}")


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if (
            fullname.startswith("ray.")
            and fullname not in sys.modules
            and fullname != "ray._testing"
        ):
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> Any:
        provided = _PROVIDED.get(spec.name)
        if provided is not None:
            return provided
        helpers = _helpers()
        if spec.name in helpers:
            return helpers[spec.name]
        module = _StubModule(spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: Any) -> None:
        return None


def _helpers() -> dict[str, types.ModuleType]:
    import importlib

    _testing = importlib.import_module("ray._testing")

    names = (
        "ray._private.test_utils",
        "ray._common.test_utils",
        "ray.test_utils",
        "ray.tests.conftest",
        "ray.tests.client_test_utils",
    )
    return dict.fromkeys(names, _testing)


sys.meta_path.insert(0, _Finder())
