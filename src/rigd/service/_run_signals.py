"""How ``rigd run`` hears Ctrl-C (SIGINT), SIGTERM and SIGHUP: one stop request, then a force.

While the pipeline starts, the first of either ends the start at once
(``KeyboardInterrupt``): there is nothing to drain yet, and an actor's setup
may never return. Once it runs, the first asks for a clean stop (sources
first, every lossless reader drains, files sealed).

Only a Ctrl-C (SIGINT) that comes after ``rigd run`` said it is stopping
forces (``KeyboardInterrupt``: actors killed, files repaired). Signals that
arrive together are one request: coreutils ``timeout`` sends SIGTERM to its
child and then to the child's whole process group (unless ``--foreground``),
so ``rigd run`` gets two at once; a terminal's Ctrl-C reaches the whole
foreground group. A SIGTERM never forces (systemd, ``kill``, ``timeout``,
``docker stop`` mean a clean stop; SIGKILL is theirs to force, and ``rigd
recover`` repairs the file then). SIGHUP (the terminal closed, the SSH
session lost) is a SIGTERM: a clean stop, never a force. The actor processes
have process groups of their own (``rigd.actors._worker_pool``), so a group's
signal reaches only ``rigd run``, which stops them in order; a SIGTERM or
SIGHUP sent to them too (systemd's ``KillMode=control-group``) is deferred
while ``rigd run`` lives (``rigd.actors._worker``). Once forced, further
signals are ignored: the kill under way is not interrupted.
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
from types import FrameType
from typing import TextIO, cast

from rigd.service._stop_signals import STOP_SIGNALS

__all__ = ["STOP_SIGNALS", "Interrupts", "unfailing"]


class Interrupts:
    """The stop requests of one ``rigd run``, as its SIGINT, SIGTERM and SIGHUP handler.

    ``starting``: set while the pipeline starts (the first signal forces).
    ``stopping``: set once ``rigd run`` has said it is stopping (a Ctrl-C
    after that forces). ``count``: the signals heard (exit status 130 when
    any). ``stop``: set on the first request.
    """

    def __init__(self) -> None:
        self.count = 0
        self.stop = threading.Event()
        self.starting = False
        self.stopping = False
        self.forced = False

    def handle(self, signum: int, frame: FrameType | None) -> None:
        """The signal handler (``signal.signal(SIGINT, interrupts.handle)``).

        Raises:
            KeyboardInterrupt: to force, once: the first signal while
                starting, or a SIGINT after a stop request that ``rigd run``
                has announced (``stopping``).
        """
        self.count += 1
        if self.forced:
            return  # the forced stop is under way: let it finish
        requested = self.stop.is_set()
        self.stop.set()
        force = self.starting or (signum == signal.SIGINT and requested and self.stopping)
        if force:
            self.forced = True
            raise KeyboardInterrupt


class _Unfailing(io.TextIOBase):
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(text)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def isatty(self) -> bool:
        with contextlib.suppress(OSError, ValueError):
            return self._stream.isatty()
        return False


def unfailing(stream: TextIO) -> TextIO:
    """``stream`` (stdout, stderr) with its write errors dropped.

    After SIGHUP the terminal may be gone: each write to it fails (``EIO``),
    and ``rigd run`` must still stop its actors and seal its files; what it
    would have said is lost with the terminal (the run's log file keeps the
    actors' lines).
    """
    return cast(TextIO, _Unfailing(stream))
