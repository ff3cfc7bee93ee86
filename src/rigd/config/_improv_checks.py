"""What ``rigd convert`` checks in an improv config file beyond its shape.

A connection naming an actor the file does not define (``Gen.q_out:
[Proc.q_in]`` without a ``Proc`` under ``actors``) is refused, as rigd's
planning refuses a link to an unknown actor, but in the improv file's words:
its file, line and key, and the names it does define.

An actor whose ``package`` cannot be found (``importlib.util.find_spec``,
which imports its parent packages but not the module itself) is refused by
``rigd convert``, as ``rigd run`` and ``rigd load`` refuse a class that cannot
be imported (``rigd.pipeline._plan``); it is looked for as ``rigd run`` looks
for it, the current directory first.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["missing_modules", "undefined_actors"]


def undefined_actors(
    path: str,
    connections: Mapping[str, list[str] | str],
    defined: Iterable[str],
    lines: Mapping[tuple[Any, ...], int],
) -> list[str]:
    """A problem for each connection end (``Actor.link``) whose actor is not one
    of ``defined`` (the file's ``actors``): file, line, key, the defined names."""
    names = list(defined)
    problems = []
    for source, targets in connections.items():
        where = _where(path, lines.get(("connections", source)), f"connections.{source}")
        ends = [source, *([targets] if isinstance(targets, str) else targets)]
        for end in ends:
            actor, dot, link = end.strip().partition(".")
            if dot and link and actor not in names:  # not Actor.link: said already
                problems.append(
                    f"{where}: {end.strip()!r} names actor {actor!r}, which is not in "
                    f"actors ({', '.join(names)}); define it under actors, or correct "
                    "the name"
                )
    return problems


def missing_modules(
    path: str, packages: Mapping[str, str], lines: Mapping[tuple[Any, ...], int]
) -> list[str]:
    """A problem for each actor (name -> its ``package``) whose module cannot be
    found from the current directory or ``sys.path``, without importing it."""
    problems = []
    for name, package in packages.items():
        why = _not_found(package)
        if why is None:
            continue
        where = _where(path, lines.get(("actors", name, "package")), f"actors.{name}.package")
        problems.append(
            f"{where}: module {package!r} cannot be found ({why}); rigd run and rigd load "
            "refuse its class too: run from the directory that holds it, install it, or "
            "correct package"
        )
    return problems


def _not_found(module: str) -> str | None:
    """Why ``module`` cannot be found, or None when it can."""
    added = "" not in sys.path and os.getcwd() not in sys.path
    if added:  # as `rigd run` imports it: the current directory too
        sys.path.insert(0, os.getcwd())
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:  # a parent package missing, or a bad name
        return f"{type(exc).__name__}: {exc}"
    finally:
        if added:
            sys.path.remove(os.getcwd())
    return None if found is not None else f"no module named {module!r}"


def _where(path: str, line: int | None, key: str) -> str:
    return f"{path}, line {line}, {key}" if line else f"{path}, {key}"
