"""ObjectRefGenerator: the refs of a generator method's items, as they come.

A method that yields streams: each item is sent back as soon as the actor
produces it, and the caller's generator yields a ref per item, usable with
``for`` (blocking) and ``async for``. An exception in the method surfaces at
the item where it happened: the ref yielded there raises it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

from rigd.actors._ref import ObjectRef

__all__ = ["ObjectRefGenerator", "set_blocking"]

#: Entered while a caller waits for the next item: ``rigd.get``'s
#: ``_Blocking``, which lends a task's CPU while it waits (set by ``_api``,
#: which sits above this module).
_blocking: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext


def set_blocking(blocking: Callable[[], AbstractContextManager[None]]) -> None:
    """Set what a wait for the next item runs inside (``_api`` sets ``_Blocking``)."""
    global _blocking
    _blocking = blocking


class ObjectRefGenerator(Iterator[ObjectRef[Any]], AsyncIterator[ObjectRef[Any]]):
    """Yields one ``ObjectRef`` per item a generator method produces."""

    def __init__(self) -> None:
        self._refs: list[ObjectRef[Any]] = []
        self._position = 0
        self._ended = False
        self._lock = threading.Lock()
        self._signal: ObjectRef[None] = ObjectRef()
        # Set by the runtime: cancels the call (see rigd.cancel), and the
        # connection the items come on.
        self._canceller: Any = None
        self._source: Any = None
        self._done = False
        self._end_callbacks: list[Any] = []

    def __repr__(self) -> str:
        return f"ObjectRefGenerator({len(self._refs)} items{', ended' if self._ended else ''})"

    # -- filled by the runtime (on its I/O thread) ---------------------------------

    def _push(self, value: Any) -> None:
        self._add(ObjectRef._resolved(value), end=False)

    def _end(self) -> None:
        self._add(None, end=True)

    def _set_error(self, error: BaseException) -> None:
        ref: ObjectRef[Any] = ObjectRef()
        ref._set_error(error)
        self._add(ref, end=True)

    def _add(self, ref: ObjectRef[Any] | None, end: bool) -> None:
        with self._lock:
            if self._ended:
                return
            if ref is not None:
                self._refs.append(ref)
            callbacks: list[Any] = []
            if end:
                self._ended = True
                self._done = True
                callbacks, self._end_callbacks = self._end_callbacks, []
            signal, self._signal = self._signal, ObjectRef()
        signal._set_value(None)
        for callback in callbacks:
            callback()

    def _on_end(self, callback: Any) -> None:
        """Call ``callback()`` once every item is in (at once if already)."""
        with self._lock:
            if not self._ended:
                self._end_callbacks.append(callback)
                return
        callback()

    # -- read by the caller ------------------------------------------------------------

    def _take(self) -> tuple[ObjectRef[Any] | None, ObjectRef[None] | None]:
        with self._lock:
            if self._position < len(self._refs):
                ref = self._refs[self._position]
                self._position += 1
                return ref, None
            if self._ended:
                raise StopIteration
            return None, self._signal

    def __iter__(self) -> ObjectRefGenerator:
        return self

    def __next__(self) -> ObjectRef[Any]:
        while True:
            ref, signal = self._take()
            if ref is not None:
                return ref
            assert signal is not None
            # A task waiting for the next item lends its CPU, as in rigd.get:
            # with one CPU, the generator task it waits for must run.
            with _blocking():
                signal._wait(None)

    def __aiter__(self) -> ObjectRefGenerator:
        return self

    async def __anext__(self) -> ObjectRef[Any]:
        while True:
            try:
                ref, signal = self._take()
            except StopIteration:
                raise StopAsyncIteration from None
            if ref is not None:
                return ref
            await signal  # type: ignore[misc]

    def completed(self) -> bool:
        """Whether the method has finished (every item is in)."""
        return self._ended
