"""No import cycle inside the package, counting imports inside functions.

Imports under ``if TYPE_CHECKING:`` are left out: they never run. A cycle
found here is named module by module with the lines that close it.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import grimp
import pytest


def import_cycles(package: str) -> list[list[str]]:
    """Each set of modules of ``package`` that import one another round (Tarjan)."""
    graph = grimp.build_graph(package, cache_dir=None, exclude_type_checking_imports=True)
    edges = {
        module: {m for m in graph.find_modules_directly_imported_by(module) if m in graph.modules}
        for module in graph.modules
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for module in sorted(edges):
            if module not in index:
                visit(module)
    finally:
        sys.setrecursionlimit(limit)
    return cycles


def test_the_package_has_no_import_cycle() -> None:
    assert import_cycles("rigd") == []


def test_a_cycle_through_an_import_inside_a_function_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "cyclic"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from cyclic import b\n")
    (package / "b.py").write_text(
        textwrap.dedent(
            """
            def late():
                from cyclic import a
                return a
            """
        )
    )
    (package / "c.py").write_text(
        textwrap.dedent(
            """
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from cyclic import a
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    assert import_cycles("cyclic") == [["cyclic.a", "cyclic.b"]]
