"""Ray's ``ray.util.ActorPool``: a fixed set of actors sharing a stream of work.

Ray's own pattern for spreading calls over a few actors (one per GPU, say):
``fn(actor, value)`` makes one call on an idle actor and returns its ref;
values wait in the pool until an actor is free, and each result hands its
actor back. ``map`` yields the results in the order of the values,
``map_unordered`` as they finish. The names, arguments and errors are
Ray's (``StopIteration`` when nothing is pending, ``TimeoutError`` when a
result is not ready within ``timeout``); it is plain Python over
``rigd.wait`` and ``rigd.get``, in the driver.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from rigd.actors import get, wait

__all__ = ["ActorPool"]

#: ``fn(actor, value)``: makes one call on ``actor`` and returns its ref.
Submit = Callable[[Any, Any], Any]

_TIMED_OUT = "Timed out waiting for result"


def _key(ref: Any) -> Any:
    """A hashable key for what ``fn`` returned (one ref, or a list of them)."""
    return tuple(ref) if isinstance(ref, list) else ref


class ActorPool:
    """Spread calls over ``actors``, one call per actor at a time (``ray.util.ActorPool``).

    Args:
        actors: actor handles; the pool uses each for one call at a time.

    Not thread-safe: use a pool from one thread, as in Ray.
    """

    def __init__(self, actors: Iterable[Any]) -> None:
        self._idle: list[Any] = list(actors)
        #: Submitted calls by ref key: (submission index, ref, actor).
        self._running: dict[Any, tuple[int, Any, Any]] = {}
        #: Submission index -> ref key, for results taken in order.
        self._by_index: dict[int, Any] = {}
        self._next_index = 0
        #: Values waiting for a free actor, in submission order.
        self._waiting: collections.deque[tuple[Submit, Any]] = collections.deque()

    def map(self, fn: Submit, values: Iterable[Any]) -> Iterator[Any]:
        """Call ``fn(actor, value)`` for every value; yield the results in order.

        Results of earlier submissions not yet taken are discarded first, as
        in Ray. The values are submitted at once (waiting in the pool while no
        actor is free); iterating takes each result with ``get_next``.

        Raises (when iterated): what the call raised (``TaskError``, as from
        ``rigd.get``).
        """
        self._discard_pending()
        for value in values:
            self.submit(fn, value)
        return self._results(self.get_next)

    def map_unordered(self, fn: Submit, values: Iterable[Any]) -> Iterator[Any]:
        """As ``map``, but yield each result as soon as it is ready."""
        self._discard_pending()
        for value in values:
            self.submit(fn, value)
        return self._results(self.get_next_unordered)

    def _results(self, take: Callable[[], Any]) -> Iterator[Any]:
        while self.has_next():
            yield take()

    def _discard_pending(self) -> None:
        self._waiting.clear()
        for index, _ref, actor in list(self._running.values()):
            self._forget(index)
            self._idle.append(actor)

    def submit(self, fn: Submit, value: Any) -> None:
        """Call ``fn(actor, value)`` on an idle actor, or queue it until one is free."""
        if not self._idle:
            self._waiting.append((fn, value))
            return
        actor = self._idle.pop()
        ref = fn(actor, value)
        index = self._next_index
        self._next_index += 1
        key = _key(ref)
        self._running[key] = (index, ref, actor)
        self._by_index[index] = key

    def has_next(self) -> bool:
        """Whether a submitted call's result is still to be taken."""
        return bool(self._running)

    def get_next(self, timeout: float | None = None, ignore_if_timedout: bool = False) -> Any:
        """The result of the oldest submission not yet taken.

        Args:
            timeout: seconds to wait at most; ``None`` waits for ever.
            ignore_if_timedout: on a timeout, drop that submission (its
                actor goes back to the pool) before raising.

        Raises:
            StopIteration: nothing is pending.
            TimeoutError: the result was not ready within ``timeout``.

        Unlike Ray's, it may follow ``get_next_unordered``: it then takes the
        oldest submission still pending (Ray raises ``ValueError``).
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        index = min(self._by_index)  # at most one pending call per actor: a short list
        _, ref, _ = self._running[self._by_index[index]]
        if timeout is not None and not wait([_first(ref)], timeout=timeout)[0]:
            if not ignore_if_timedout:
                raise TimeoutError(_TIMED_OUT)
            self._give_back(index)
            raise TimeoutError(f"{_TIMED_OUT}. The task {ref!r} has been ignored.")
        self._give_back(index)
        return get(ref)

    def get_next_unordered(
        self, timeout: float | None = None, ignore_if_timedout: bool = False
    ) -> Any:
        """The result of any submission that is ready (the first to be, if none is yet).

        Arguments and errors as ``get_next``; on a timeout with
        ``ignore_if_timedout`` the oldest submission is dropped.
        """
        if not self.has_next():
            raise StopIteration("No more results to get")
        firsts = {_first(ref): key for key, (_, ref, _) in self._running.items()}
        ready, _ = wait(list(firsts), num_returns=1, timeout=timeout)
        if not ready:
            oldest = min(self._by_index)
            if not ignore_if_timedout:
                raise TimeoutError(_TIMED_OUT)
            _, ref, _ = self._running[self._by_index[oldest]]
            self._give_back(oldest)
            raise TimeoutError(f"{_TIMED_OUT}. The task {ref!r} has been ignored.")
        index, ref, _ = self._running[firsts[ready[0]]]
        self._give_back(index)
        return get(ref)

    def _forget(self, index: int) -> Any:
        """Drop submission ``index``; return its actor."""
        _, _, actor = self._running.pop(self._by_index.pop(index))
        return actor

    def _give_back(self, index: int) -> None:
        self._return(self._forget(index))

    def _return(self, actor: Any) -> None:
        self._idle.append(actor)
        if self._waiting:
            self.submit(*self._waiting.popleft())

    def has_free(self) -> bool:
        """Whether an actor is idle and no value waits for one."""
        return bool(self._idle) and not self._waiting

    def pop_idle(self) -> Any | None:
        """Take an idle actor out of the pool; ``None`` if none is free."""
        return self._idle.pop() if self.has_free() else None

    def push(self, actor: Any) -> None:
        """Add ``actor`` to the pool (it takes a waiting value at once, if any).

        Raises:
            ValueError: the actor is already in this pool.
        """
        busy = [a for _, _, a in self._running.values()]
        if actor in self._idle or actor in busy:
            raise ValueError("Actor already belongs to current ActorPool")
        self._return(actor)


def _first(ref: Any) -> Any:
    """The ref to wait on for what ``fn`` returned (the first of a list)."""
    return ref[0] if isinstance(ref, list) else ref
