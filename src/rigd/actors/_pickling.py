"""Code shipped by value keeps its file name, line numbers and source lines.

Classes and functions that a worker cannot import by name (defined in
``__main__``, in a notebook cell, inside a function) travel by value through
cloudpickle. Newer cloudpickle releases (3.1.2 on) rename every code object
they send ``<dynamic-code>``, so a remote traceback would show no file and
no source line. rigd's pickler sends each code object with its real file
name and the source lines it spans; the receiving process registers those
lines with ``linecache``, which is where ``traceback`` looks them up. This
holds whatever cloudpickle release is installed, and for code whose file the
worker cannot read (``python -c``, a notebook, a file edited since).
"""

from __future__ import annotations

import collections
import io
import linecache
import pickle
import threading
import types
from collections.abc import Callable
from typing import Any

import cloudpickle

__all__ = ["dumps_by_value", "register_source"]

_lock = threading.Lock()
#: File name -> the lines rigd registered for it (None where unknown).
_registered: dict[str, list[str | None]] = {}


def _source_span(code: types.CodeType) -> tuple[int, tuple[str, ...]]:
    """The first line number of ``code`` and its source lines (empty if unknown)."""
    lines = linecache.getlines(code.co_filename)
    if not lines:
        return code.co_firstlineno, ()
    last = code.co_firstlineno
    for _start, _end, line in code.co_lines():
        if line is not None and line > last:
            last = line
    first = max(code.co_firstlineno, 1)
    return first, tuple(lines[first - 1 : last])


def register_source(filename: str, first: int, lines: tuple[str, ...]) -> None:
    """Make ``lines`` (line ``first`` on) of ``filename`` known to ``linecache``."""
    if not lines:
        return
    with _lock:
        known = _registered.get(filename)
        if known is None:
            cached: tuple[Any, ...] | None = linecache.cache.get(filename)
            if cached is not None and len(cached) == 4 and cached[1] is not None:
                return  # linecache reads the real file, which it can check
            known = _registered[filename] = []
        end = first - 1 + len(lines)
        if len(known) < end:
            known.extend([None] * (end - len(known)))
        known[first - 1 : end] = lines
        text = [line if line is not None else "\n" for line in known]
        # mtime None: linecache.checkcache keeps the entry (it has no file to check).
        linecache.cache[filename] = (sum(map(len, text)), None, text, filename)


def _rebuild_code(
    reduce: Callable[..., types.CodeType],
    args: tuple[Any, ...],
    filename: str,
    first: int,
    lines: tuple[str, ...],
) -> types.CodeType:
    """Unpickle a code object: restore its file name and register its source."""
    code = reduce(*args)
    register_source(filename, first, lines)
    if code.co_filename == filename:
        return code
    return code.replace(co_filename=filename)


#: cloudpickle's reducer of code objects (it renames them in 3.1.2 and later).
_code_reduce = cloudpickle.Pickler.dispatch_table.get(types.CodeType)


def _reduce_code(code: types.CodeType) -> Any:
    if _code_reduce is None:
        return NotImplemented  # a cloudpickle that pickles code some other way
    reduce, args = _code_reduce(code)[:2]
    first, lines = _source_span(code)
    return (_rebuild_code, (reduce, args, code.co_filename, first, lines))


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle, with code objects that keep their file name and source."""

    dispatch_table = collections.ChainMap(
        {types.CodeType: _reduce_code}, cloudpickle.Pickler.dispatch_table
    )


def dumps_by_value(
    obj: object,
    protocol: int = 5,
    buffer_callback: Callable[[pickle.PickleBuffer], bool] | None = None,
) -> bytes:
    """``cloudpickle.dumps``, keeping file names and source lines of code sent by value."""
    with io.BytesIO() as file:
        _Pickler(file, protocol=protocol, buffer_callback=buffer_callback).dump(obj)
        return file.getvalue()
