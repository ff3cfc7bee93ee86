"""A process's I/O thread: one epoll loop for the head's socket and every
actor channel, and a queue of actions other threads hand it.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import threading
from collections.abc import Callable

__all__ = ["EPOLLIN", "EPOLLOUT", "IoLoop"]

log = logging.getLogger(__name__)

EPOLLIN = select.EPOLLIN
EPOLLOUT = select.EPOLLOUT


class IoLoop:
    """An epoll loop on a thread of its own (``rigd-io``), started by ``start``.

    Args:
        tick: called before each batch of events (flushes buffered task events).
        tick_timeout: the longest wait for events before ``tick`` runs again
            (-1: wait for events only).
        on_wake: called on the I/O thread after the queued actions, each wake.
    """

    def __init__(
        self,
        tick: Callable[[], None],
        tick_timeout: Callable[[], float],
        on_wake: Callable[[], None],
    ) -> None:
        self.closed = False
        self._tick = tick
        self._tick_timeout = tick_timeout
        self._after_wake = on_wake
        self.epoll = select.epoll()
        self._readers: dict[int, Callable[[], None]] = {}
        self._writers: dict[int, Callable[[], None]] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._actions: collections.deque[Callable[[], None]] = collections.deque()
        self.watch(self._wake_r, self._on_wake)
        self.thread = threading.Thread(target=self._run, name="rigd-io", daemon=True)

    def start(self) -> None:
        """Start the I/O thread."""
        self.thread.start()

    def on_thread(self) -> bool:
        """Whether the caller runs on the I/O thread."""
        return threading.current_thread() is self.thread

    def watch(
        self, fd: int, reader: Callable[[], None], writer: Callable[[], None] | None = None
    ) -> None:
        """Call ``reader`` when ``fd`` is readable, ``writer`` when writable
        (once ``modify`` asks for EPOLLOUT)."""
        self._readers[fd] = reader
        if writer is not None:
            self._writers[fd] = writer
        self.epoll.register(fd, EPOLLIN)

    def unwatch(self, fd: int) -> None:
        """Stop watching ``fd`` (before it is closed)."""
        self._readers.pop(fd, None)
        self._writers.pop(fd, None)
        try:
            self.epoll.unregister(fd)
        except (OSError, ValueError):
            pass

    def modify(self, fd: int, mask: int) -> None:
        """Watch ``fd`` for the events ``mask`` names (0: none)."""
        try:
            self.epoll.modify(fd, mask)
        except (OSError, ValueError):
            pass  # closed meanwhile

    def run_soon(self, action: Callable[[], None]) -> None:
        """Run ``action`` on the I/O thread (at once if called there)."""
        if self.on_thread():
            action()
            return
        self._actions.append(action)
        self.wake()

    def wake(self) -> None:
        """Wake the I/O thread (it runs the queued actions and ``tick``)."""
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError, ValueError):
            pass  # already woken, or shutting down

    def _on_wake(self) -> None:
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        while self._actions:
            self._actions.popleft()()
        self._after_wake()

    def _run(self) -> None:
        while not self.closed:
            try:
                events = self.epoll.poll(self._tick_timeout())
            except InterruptedError:
                continue
            self._tick()
            for fd, mask in events:
                if self.closed:
                    break
                try:
                    if mask & EPOLLOUT:
                        writer = self._writers.get(fd)
                        if writer is not None:
                            writer()
                    if mask & ~EPOLLOUT:
                        reader = self._readers.get(fd)
                        if reader is not None:
                            reader()
                except Exception:
                    log.exception("rigd I/O thread: error while handling a connection")

    def close(self) -> None:
        """Stop the thread (waits up to 5 s unless called on it) and close the epoll."""
        self.closed = True
        self.wake()
        if not self.on_thread():
            self.thread.join(timeout=5)
        self.epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
