"""The signals that stop a foreground command cleanly, and their handlers while it runs.

``rigd run`` (``_run_signals``), ``rigd run --address`` (``_run_cluster``) and
``rigd reprocess`` (``_reprocess_signals``) take Ctrl-C (SIGINT), SIGTERM
(``kill``, ``timeout``, systemd, ``docker stop``) and SIGHUP (the terminal
closed, the SSH session lost) as one thing: a clean stop (files sealed, the
summary printed, rings removed). Python's default for SIGHUP ends the process
at once (exit status 129), leaving files unsealed and rings in /dev/shm: every
one of them must be handled, so they are named here once.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType

from rigd.pipeline import TERMINATING_SIGNALS

__all__ = ["STOP_SIGNALS", "SignalHandler", "handling_stop_signals"]

#: The signals a foreground ``rigd`` command takes as a clean stop request.
#: SIGINT, and the ones a ``with Pipeline(...)`` block takes too (SIGTERM, SIGHUP).
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, *TERMINATING_SIGNALS)

#: A handler as ``signal.signal`` takes it: ``handler(signum, frame)``.
SignalHandler = Callable[[int, FrameType | None], None]


@contextlib.contextmanager
def handling_stop_signals(handler: SignalHandler) -> Iterator[None]:
    """While entered, ``handler`` handles every one of ``STOP_SIGNALS``; the
    previous handlers are put back on exit (``SIG_DFL`` for one that was not
    set from Python). Main thread only (``signal.signal``).

    Raises:
        ValueError: entered from a thread other than the main thread.
    """
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
