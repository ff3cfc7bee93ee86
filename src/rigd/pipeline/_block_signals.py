"""SIGTERM and SIGHUP as a stop request while a ``with Pipeline(...)`` block runs.

Python's default for SIGTERM (``kill``, ``timeout``, systemd, ``docker stop``)
and SIGHUP (the terminal closed, the SSH session lost) ends the process at
once: ``__exit__`` never runs, the actors end with their head and the run
files are left unsealed. A Ctrl-C (SIGINT) raises ``KeyboardInterrupt`` in
the main thread and the block unwinds through ``__exit__``, which stops the
run and seals its files. While the block runs in the main thread,
:class:`BlockSignals` makes SIGTERM and SIGHUP do the same: their handler
raises :class:`StopSignal` (a ``KeyboardInterrupt``) in the main thread. The
previous handlers are put back when the block has been left (after its stop),
so a second signal during that stop forces it, as a second Ctrl-C does.

A signal the process ignores (``SIG_IGN``: ``nohup`` ignores SIGHUP) stays
ignored. Entered from another thread (``signal.signal`` is the main thread's
only), nothing is changed. ``rigd run`` and the other foreground commands
take SIGINT as well (``rigd.service._stop_signals.STOP_SIGNALS``, which names
these).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["TERMINATING_SIGNALS", "BlockSignals", "StopSignal"]

#: A previous handler as ``signal.signal`` returns it.
_Handler = Callable[[int, FrameType | None], Any] | int | None

#: The signals that end a process unless handled, taken as a stop request.
TERMINATING_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)


class StopSignal(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived while a ``with Pipeline(...)`` block ran in the
    main thread: raised there, as Ctrl-C raises ``KeyboardInterrupt``, so the
    block unwinds and ``__exit__`` stops the run and seals its files.

    Attributes:
        signum: the signal's number (``signal.SIGTERM`` or ``signal.SIGHUP``).
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        name = signal.Signals(signum).name
        super().__init__(f"{name} received: the pipeline's run was stopped and its files sealed")


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopSignal(signum)


class BlockSignals:
    """The handlers of :data:`TERMINATING_SIGNALS` while one block runs: ``take`` then
    ``restore`` (each once; both do nothing outside the main thread)."""

    def __init__(self) -> None:
        self._previous: dict[signal.Signals, _Handler] = {}

    def take(self) -> None:
        """Raise :class:`StopSignal` on each of the signals not ignored, from now on."""
        if threading.current_thread() is not threading.main_thread() or self._previous:
            return
        for sig in TERMINATING_SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:
                continue  # nohup's SIGHUP: the user asked for it to be ignored
            self._previous[sig] = signal.signal(sig, _raise_stop)

    def restore(self) -> None:
        """Put back the handlers ``take`` replaced (``SIG_DFL`` for one not set from Python)."""
        previous, self._previous = self._previous, {}
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
