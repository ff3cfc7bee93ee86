"""What ``replay_file`` says of a replay that did not end well, and what it checks first.

A replay's failure is its row in ``rigd reprocess``'s table, so its text
names the cause and the fix: a replay past its ``timeout`` (``rigd
reprocess --timeout``), an interrupt (Ctrl-C, SIGTERM, a cancelled Ray
task), an output name longer than the file system takes. Kept apart from
``_replay`` (the pipeline's rewrite for a replay).
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from rigd.storage import remove_stale_rings

__all__ = [
    "error_text",
    "heed_interrupts",
    "replay_timeout",
    "run_path",
    "sweep_stale_rings",
    "unheed_interrupts",
]

log = logging.getLogger("rigd.pipeline")

#: What ``run_inline`` says when a replay outlives its timeout.
_INLINE_TIMEOUT = "the replay did not end within"


def replay_timeout(timeout: float) -> TimeoutError:
    """The error of a replay past its ``timeout``; its message names the option."""
    return TimeoutError(
        f"the replay did not end within its timeout of {timeout:g} s (a processor that "
        "hangs, or a file longer than that); give it longer with `rigd reprocess "
        "--timeout SECONDS` (replay_file's timeout=)"
    )


def run_path(run_file: object) -> str:
    """``run_file`` as a path string (``str`` or ``os.PathLike``).

    Raises:
        TypeError: anything else (``None``, bytes, a number), naming what was given.
    """
    if isinstance(run_file, str):
        return run_file
    if isinstance(run_file, os.PathLike):
        path = os.fspath(run_file)
        if isinstance(path, str):
            return path
    raise TypeError(
        f"run_file must be a run file's path (str or os.PathLike), got "
        f"{type(run_file).__name__}: {run_file!r}"
    )


def error_text(exc: BaseException, run_file: str, timeout: float) -> str:
    """One line for ``exc``, the failure of replaying ``run_file``: ``"Class: what (fix)"``."""
    if isinstance(exc, KeyboardInterrupt):
        return (
            "KeyboardInterrupt: interrupted (Ctrl-C, SIGTERM, or its Ray task cancelled) "
            "before the replay ended"
        )
    if isinstance(exc, SystemExit):
        return f"SystemExit: the replay's process was told to exit (status {exc.code})"
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, TimeoutError) and text.startswith(_INLINE_TIMEOUT):
        return f"TimeoutError: {text}"
    if isinstance(exc, RuntimeError) and text.startswith(_INLINE_TIMEOUT):
        return f"TimeoutError: {replay_timeout(timeout)}"
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:
        return (
            f"OSError: [Errno {errno.ENAMETOOLONG}] {exc.strerror}: {exc.filename or text}: the "
            f"output's name (made from {Path(run_file).name!r}) is longer than the file system "
            "takes; give the run file a shorter name (or link it under one) and reprocess it"
        )
    return f"{type(exc).__name__}: {text}"


def sweep_stale_rings() -> None:
    """``rigd.storage.remove_stale_rings``: rings in /dev/shm whose owner died (a
    replay's process killed, ``kill -9``) are removed, each logged. About 0.3 ms
    with 20 entries in /dev/shm, 14 ms with 500 (``BENCHMARKS.md``)."""
    for segment in remove_stale_rings():
        log.warning("removed ring %s left by a process that died", segment)


def heed_interrupts() -> Any:
    """Let a SIGINT raise ``KeyboardInterrupt`` in this (main) thread; return what
    ``unheed_interrupts`` puts back, or None when nothing was changed.

    Ray's cancel of a running task (``ray.cancel``, not forced) simulates a
    SIGINT in its worker (``_thread.interrupt_main``), which Python ignores
    when SIGINT is ignored: a worker of a cluster started in the background
    (``nohup``, ``cmd &`` in a script, which ignore SIGINT) would replay on
    and never seal its file as failed.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if previous in (signal.SIG_IGN, signal.SIG_DFL, None):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        return previous
    return None


def unheed_interrupts(previous: Any) -> None:
    """Put back the SIGINT handler ``heed_interrupts`` replaced (None: nothing)."""
    if previous is not None:
        signal.signal(signal.SIGINT, previous)
