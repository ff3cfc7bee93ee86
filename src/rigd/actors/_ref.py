"""ObjectRef: the future of one call's result (or of a ``rigd.put`` value).

A ref is filled by the process's I/O thread when the reply arrives. Waiters
sleep on a plain lock each, which the filler releases: one futex wake, the
cheapest hand-off between threads Python has (about 5 us, where
``threading.Event`` takes a condition variable and two locks).
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    import asyncio
    import concurrent.futures

__all__ = ["ObjectRef", "lent_ref"]

T = TypeVar("T")

_state_lock = threading.Lock()
_ids = itertools.count(1)
_UNSET: Any = object()

#: Pending refs this process passed to another one nested inside an argument
#: or a result (its borrowers ask for the value through the head). Bounded:
#: a borrower asks as soon as it unpickles the ref, so only refs lent long ago
#: and never asked for are forgotten.
MAX_LENT = 100_000
_lent: collections.OrderedDict[str, ObjectRef[Any]] = collections.OrderedDict()
_lent_lock = threading.Lock()
#: Set by the runtime: asks the owner of a borrowed ref for its value.
fetch_borrowed: Callable[[ObjectRef[Any]], None] | None = None
#: Set by the runtime: asks the owner of a borrowed ref to cancel its call.
cancel_borrowed: Callable[[str, bool], None] | None = None


def lent_ref(ref_id: str) -> ObjectRef[Any] | None:
    """The pending ref this process lent under ``ref_id``, if it still has it."""
    with _lent_lock:
        return _lent.get(ref_id)


class ObjectRef(Generic[T]):
    """A handle to a value that a call produces, now or later.

    Get the value with ``rigd.get(ref)`` or ``await ref``. Passing a ref as a
    top-level argument of another call passes its value: the call waits for
    it. Refs are cheap; dropping one does not cancel its call.
    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_canceller",
        "_done",
        "_error",
        "_id",
        "_source",
        "_value",
        "_waiters",
    )

    def __init__(self, ref_id: str | None = None) -> None:
        self._id = ref_id if ref_id is not None else f"{os.getpid():x}-{next(_ids):x}"
        self._done = False
        self._value: Any = _UNSET
        self._error: BaseException | None = None
        self._waiters: list[Any] = []
        self._callbacks: list[Callable[[ObjectRef[T]], None]] = []
        # The connection whose reply fills this ref, so that rigd.get can read
        # it on the waiting thread (see Runtime.wait).
        self._source: Any = None
        # Asks for the call to be cancelled (see rigd.cancel; the argument is
        # ``force``); None for put().
        self._canceller: Callable[[bool], None] | None = None

    @classmethod
    def _resolved(cls, value: T) -> ObjectRef[T]:
        ref: ObjectRef[T] = cls()
        ref._value = value
        ref._done = True
        return ref

    def __repr__(self) -> str:
        state = "pending" if not self._done else ("error" if self._error else "ready")
        return f"ObjectRef({self._id}, {state})"

    def hex(self) -> str:
        """Return the ref's id, as Ray's ``ObjectRef.hex()`` does."""
        return self._id

    def done(self) -> bool:
        """Whether the value (or the error) is in."""
        return self._done

    # -- filled by the runtime ------------------------------------------------

    def _set_value(self, value: T) -> None:
        self._finish(value, None)

    def _set_error(self, error: BaseException) -> None:
        self._finish(_UNSET, error)

    def _finish(self, value: Any, error: BaseException | None) -> None:
        with _state_lock:
            if self._done:
                return
            self._value = value
            self._error = error
            self._done = True
            waiters, self._waiters = self._waiters, []
            callbacks, self._callbacks = self._callbacks, []
        for waiter in waiters:
            waiter.release()
        for callback in callbacks:
            callback(self)

    def _add_callback(self, callback: Callable[[ObjectRef[T]], None]) -> None:
        """Call ``callback(self)`` once done; at once if already done."""
        with _state_lock:
            if not self._done:
                self._callbacks.append(callback)
                return
        callback(self)

    # -- read by the API ------------------------------------------------------

    def _wait(self, timeout: float | None) -> bool:
        if self._done:
            return True
        waiter = threading.Lock()
        waiter.acquire()
        with _state_lock:
            if self._done:
                return True
            self._waiters.append(waiter)
        if waiter.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            return True
        with _state_lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        return self._done

    def _result(self) -> T:
        """The value, or raise the error; only once done."""
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[no-any-return]

    # -- the asyncio future interface, so asyncio.wait([ref, ...]) works ---------

    def add_done_callback(self, fn: Callable[[Any], object], *, context: Any = None) -> None:
        """Call ``fn(self)`` on the running event loop once the ref is done."""
        import asyncio

        loop = asyncio.get_running_loop()

        def schedule(ref: ObjectRef[T]) -> None:
            loop.call_soon_threadsafe(fn, ref, context=context)

        schedule.__wrapped__ = fn  # type: ignore[attr-defined]
        self._add_callback(schedule)

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        """Forget callbacks added with ``add_done_callback(fn)``; return how many."""
        with _state_lock:
            kept = [c for c in self._callbacks if getattr(c, "__wrapped__", None) is not fn]
            removed = len(self._callbacks) - len(kept)
            self._callbacks = kept
        return removed

    def cancelled(self) -> bool:
        """Always ``False``: a cancelled call's ref holds ``TaskCancelledError``."""
        return False

    def exception(self) -> BaseException | None:
        """The error the call ended with, or ``None`` (only once done)."""
        if not self._done:
            raise RuntimeError(f"{self!r} is not done yet")
        return self._error

    def result(self) -> T:
        """The value, or raise the error (only once done; rigd.get waits)."""
        if not self._done:
            raise RuntimeError(f"{self!r} is not done yet; use rigd.get(ref) or await ref")
        return self._result()

    def __await__(self) -> Generator[Any, None, T]:
        if not self._done:
            import asyncio  # only code that awaits refs pays for importing it

            loop = asyncio.get_running_loop()
            future = loop.create_future()

            def wake(_: ObjectRef[T]) -> None:
                loop.call_soon_threadsafe(_set_if_pending, future)

            self._add_callback(wake)
            yield from future.__await__()
        return self._result()

    # -- concurrent.futures and asyncio futures (Ray's future() / as_future()) -----

    def future(self) -> concurrent.futures.Future[T]:
        """Return a ``concurrent.futures.Future`` that gets the value (or error)."""
        import concurrent.futures

        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        future.set_running_or_notify_cancel()

        def fill(ref: ObjectRef[T]) -> None:
            if ref._error is not None:
                future.set_exception(ref._error)
            else:
                future.set_result(ref._value)

        self._add_callback(fill)
        return future

    def as_future(self, _internal: bool = False) -> asyncio.Future[T]:
        """Return an ``asyncio.Future`` on the running event loop that gets the value.

        Raises:
            RuntimeError: no event loop is running in this thread.
        """
        import asyncio

        return asyncio.wrap_future(self.future())

    def __reduce__(self) -> tuple[Any, ...]:
        # A ref nested inside an argument or a result travels as a ref, as in
        # Ray: done, with its value; pending, by id, and the process that
        # unpickles it asks this one (its owner) for the value through the
        # head. Top-level refs of a call are resolved before it is sent.
        if not self._done:
            with _lent_lock:
                _lent[self._id] = self
                _lent.move_to_end(self._id)
                while len(_lent) > MAX_LENT:
                    _lent.popitem(last=False)
            return (_borrow, (self._id,))
        return (_rebuild, (self._id, self._value, self._error))


def _set_if_pending(future: Any) -> None:
    if not future.done():
        future.set_result(None)


def _borrow(ref_id: str) -> ObjectRef[Any]:
    """Unpickle a ref that was pending when sent: ask its owner for the value."""
    own = lent_ref(ref_id)
    if own is not None:
        return own  # it came back to the process that owns it
    ref: ObjectRef[Any] = ObjectRef(ref_id)
    if fetch_borrowed is None:
        raise RuntimeError(f"{ref!r} was unpickled outside a rigd session")
    cancel = cancel_borrowed
    if cancel is not None:
        ref._canceller = lambda force: cancel(ref_id, force)
    fetch_borrowed(ref)
    return ref


def _rebuild(ref_id: str, value: Any, error: BaseException | None) -> ObjectRef[Any]:
    ref: ObjectRef[Any] = ObjectRef(ref_id)
    ref._value = value
    ref._error = error
    ref._done = True
    return ref
