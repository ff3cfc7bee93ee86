"""The classes a pipeline file names: which modules may be imported, and whether
a class takes the options the file gives it.

Importing a module runs it, so a module is refused before it is imported
when it is a program (a ``__main__``, a console script) or the daemon's own.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import os
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import entry_points
from typing import Any

from rigd.actors import Actor

__all__ = [
    "actor_class",
    "check_options",
    "import_checked",
    "import_path",
    "not_an_import_path",
    "refused_module",
]


def import_path(path: str) -> Any:
    """The object at the dotted ``path`` (``module.Class``).

    Raises:
        ImportError: not a dotted path, or the module has no such attribute
            (and whatever importing the module raises).
    """
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ImportError(f"{path!r} is not a dotted import path (module.Class)")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"module {module_name!r} has no attribute {attr!r}") from None


def not_an_import_path(path: str) -> str | None:
    """Why ``path`` (a pipeline file's ``class``) is not ``module.Class``, or None.

    A bare class name (``FrameStats``) has no module to import it from: the
    message gives the full path where rigd's own pipeline classes have it
    (``rigd.pipeline.FrameStats``), else the form to use.
    """
    parts = path.split(".")
    if len(parts) > 1 and all(part.isidentifier() for part in parts):
        return None
    bare = next((p for p in reversed(parts) if p), path)
    package = sys.modules.get(__package__ or "")
    example = (
        f"rigd.pipeline.{bare}"
        if bare.isidentifier() and bare in getattr(package, "__all__", ())
        else f"my_actors.{bare if bare.isidentifier() else 'MyActor'} (its module, then the class)"
    )
    return f"class {path!r} is not an import path; give module.Class, e.g. {example}"


#: Modules never imported through a pipeline, whatever the allow-list: the
#: daemon's own (its CLI, its server) and program entry points.
_NEVER_IMPORTED = ("rigd.service", "rigd.__main__", "rigd.actors._worker")


def _entry_point_modules() -> frozenset[str]:
    """Modules that are programs: every installed console script's module.

    Reading every installed distribution's entry points costs tens of ms (a
    file per distribution), once per actor of every plan: ``rigd reprocess``
    plans one pipeline per run file. The answer is kept while no directory
    on ``sys.path`` changes (an install or removal adds or drops a
    ``.dist-info`` there, which changes the directory's mtime): the same
    test ``importlib.metadata`` uses to keep its directory listings.
    """
    return _entry_point_modules_at(_path_stamp())


def _path_stamp() -> tuple[tuple[str, int], ...]:
    """Each ``sys.path`` entry with its mtime (ns; -1 when it is not there)."""
    stamp = []
    for entry in sys.path:
        try:
            mtime = os.stat(entry or ".").st_mtime_ns
        except OSError:
            mtime = -1
        stamp.append((entry, mtime))
    return tuple(stamp)


@functools.lru_cache(maxsize=1)
def _entry_point_modules_at(stamp: tuple[tuple[str, int], ...]) -> frozenset[str]:
    """The entry points' modules; ``stamp`` (``_path_stamp``) is the cache's key only."""
    every = entry_points()  # one pass over the distributions for both groups
    return frozenset(
        entry.value.split(":")[0].strip()
        for group in ("console_scripts", "gui_scripts")
        for entry in every.select(group=group)
    )


def refused_module(module: str) -> str | None:
    """Why ``module`` may not be imported through a pipeline, or None.

    Importing a module runs it: a module whose import has side effects (a
    ``__main__``, a program's entry point, the daemon's own CLI and server)
    must never be reachable from a pipeline file.

    A module this process already imported (in ``sys.modules``) is not run
    again by importing it, and was imported here as a library: it is not
    looked up among the console scripts (reading every installed
    distribution's entry points costs 6-20 ms, once per process, e.g. in each
    Ray task of ``rigd reprocess``). The name, dunder and daemon refusals
    apply to every module.
    """
    refused = _refused_by_name(module)
    if refused is None and module not in sys.modules and module in _entry_point_modules():
        return f"module {module!r} is a program's entry point (a console script)"
    return refused


def _refused_by_name(module: str) -> str | None:
    """``refused_module``'s refusals that its name alone gives (no lookup)."""
    parts = module.split(".")
    if not all(part.isidentifier() for part in parts):
        return f"{module!r} is not a module name"
    if any(part.startswith("__") for part in parts):
        return f"module {module!r} is a program's __main__ (or another dunder module)"
    for never in _NEVER_IMPORTED:
        if module == never or module.startswith(never + "."):
            return f"module {module!r} is part of the daemon itself"
    return None


def import_checked(modules: Iterable[str]) -> None:
    """Import ``modules``, which a caller in an environment like this one
    found to be no program (``refused_module``): ``rigd reprocess``'s driver
    (``check_replay``), for its Ray tasks, whose workers run its Python
    environment. Planning then finds them imported and reads no installed
    distribution's entry points (10 ms and more, once per worker process).

    The refusals by name (a dunder module, the daemon's own) still hold: such
    a module is not imported here, and planning refuses it. A module that
    fails to import is left to planning, which names it with the pipeline
    file's line.
    """
    for module in modules:
        if isinstance(module, str) and _refused_by_name(module) is None:
            with contextlib.suppress(Exception):
                importlib.import_module(module)


def actor_class(value: Any) -> Any:
    """The class itself, for a class already made remote with ``@rigd.remote``."""
    return getattr(value, "_cls", value)


def check_options(cls: type[Actor], options: Mapping[str, Any]) -> str | None:
    """What is wrong with ``options`` for ``cls(**options)``, or None."""
    if cls.__init__ is object.__init__:
        # No __init__ of its own: object's (*args, **kwargs) would take anything,
        # and the instance would then refuse every option.
        params: list[inspect.Parameter] = []
    else:
        try:
            signature = inspect.signature(cls.__init__)
        except (TypeError, ValueError):
            return None
        params = list(signature.parameters.values())[1:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    named = {
        p.name: p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    unknown = sorted(set(options) - set(named))
    if unknown:
        return f"unknown option(s) {unknown}; its options are {sorted(named) or 'none'}"
    missing = sorted(
        n for n, p in named.items() if p.default is inspect.Parameter.empty and n not in options
    )
    if missing:
        return f"missing required option(s) {missing}"
    return None
