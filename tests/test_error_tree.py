"""Every exception class rigd defines is in its one error tree (``rigd._exceptions``)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import rigd
from rigd import _exceptions
from rigd._exceptions import RigdError

#: Not errors: ``exit_actor``'s exit is a BaseException (as SystemExit is), so
#: an actor's own ``except Exception:`` never swallows it; a ``with Pipeline``
#: block's SIGTERM is a KeyboardInterrupt. The tree's docstring says so.
NOT_ERRORS = {"rigd.actors._context.ActorExit", "rigd.pipeline._block_signals.StopSignal"}


def _exception_classes() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(rigd.__path__, "rigd."):
        if info.name == "rigd.__main__":
            continue  # runs the command line when imported; it defines no class
        module = importlib.import_module(info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == info.name:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return found


def _names_in_the_tree() -> set[str]:
    doc = _exceptions.__doc__ or ""
    drawing = doc.split("::", 1)[1].split("\n\n", 2)[1]
    root = drawing.split()[0]
    return {root, *re.findall(r"── (\w+)", drawing)}


def test_every_exception_class_in_the_package_derives_from_rigd_error() -> None:
    classes = _exception_classes()

    outside = sorted(
        name
        for name, cls in classes.items()
        if name not in NOT_ERRORS and not issubclass(cls, RigdError)
    )

    assert len(classes) > 20  # the walk found the package's classes
    assert outside == []


def test_every_public_error_class_is_defined_in_the_tree_module_and_drawn_in_it() -> None:
    classes = _exception_classes()
    drawn = _names_in_the_tree()

    public = {
        name: cls
        for name, cls in classes.items()
        if name not in NOT_ERRORS and not cls.__name__.startswith("_")
    }

    assert sorted(n for n in public if not n.startswith("rigd._exceptions.")) == []
    assert sorted(cls.__name__ for cls in public.values() if cls.__name__ not in drawn) == []
    assert sorted(drawn - {cls.__name__ for cls in public.values()}) == []
    assert "ActorExit" in (_exceptions.__doc__ or "")
    assert "StopSignal" in (_exceptions.__doc__ or "")


def test_the_errors_that_joined_the_tree_are_still_the_builtin_errors_users_catch() -> None:
    import rigd.config
    import rigd.exceptions
    import rigd.pipeline
    import rigd.service

    assert issubclass(rigd.config.PipelineFileError, ValueError)
    assert issubclass(rigd.config.ServiceConfigError, rigd.config.PipelineFileError)
    assert issubclass(rigd.pipeline.ExpressionError, ValueError)
    assert issubclass(rigd.exceptions.NotFoundError, LookupError)
    assert issubclass(rigd.exceptions.CamerasUnavailableError, RuntimeError)
    assert rigd.exceptions.TaskCancelledError.__mro__[1] is rigd.exceptions.TaskError
    assert not issubclass(rigd.exceptions.TaskCancelledError, rigd.exceptions.WorkerCrashedError)
