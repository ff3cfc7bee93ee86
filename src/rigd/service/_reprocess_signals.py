"""Ctrl-C, SIGTERM and SIGHUP stop ``rigd reprocess`` cleanly: one interrupt, then shielded.

As with ``rigd run`` (``_run_signals.Interrupts``), SIGTERM (``kill``, ``timeout``,
systemd) and SIGHUP (the terminal closed, the SSH session lost) mean what
Ctrl-C means (``_stop_signals.STOP_SIGNALS``). A reprocess job replays its file on the
main thread (``replay_file``), so the first of either raises
``KeyboardInterrupt`` there: the file being replayed is stopped, sealed and
marked ``run_state: failed``, Ray tasks are cancelled, and the table of what
finished is printed. Later ones are only noted: a second interrupt in that
cleanup would leave a file unsealed or rings in /dev/shm, and the cleanup is
bounded (an actor's stop joins its step for at most 10 s; Ray tasks are
waited for at most ``_reprocess_ray.CANCEL_WAIT_S``).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType, TracebackType
from typing import Any, TextIO

from rigd.service._stop_signals import STOP_SIGNALS

__all__ = ["StopSignals"]


class StopSignals:
    """While entered: the first SIGINT, SIGTERM or SIGHUP raises ``KeyboardInterrupt``,
    later ones are noted on ``err`` and ignored. ``name`` is the first one's name."""

    def __init__(self, err: TextIO = sys.stderr) -> None:
        self.err = err
        self.count = 0
        self.name: str | None = None
        self._previous: dict[int, Any] = {}

    def handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1
        if self.count == 1:
            self.name = signal.Signals(signum).name
            raise KeyboardInterrupt
        print(
            f"rigd reprocess: {signal.Signals(signum).name}: already stopping (the file being "
            "replayed is sealed and marked failed first)",
            file=self.err,
            flush=True,
        )

    def __enter__(self) -> StopSignals:
        self._previous = {sig: signal.signal(sig, self.handle) for sig in STOP_SIGNALS}
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
