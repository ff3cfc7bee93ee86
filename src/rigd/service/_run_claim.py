"""``rigd run``'s run id, claimed at once: two runs never share one.

A run id names the run's log (``<data dir>/ID.log``, ``run_log_path``) and
its run file. ``rigd run`` refuses an id whose log exists (a run is never
recorded over), but two ``rigd run --run-id ID`` started at the same moment
could both find no log, then both start: the second one's recorder met the
first one's file (a traceback), its lines went into the first one's log, and
its failed start removed that log as its own (``_run_unused``).

The claim creates the log itself, exclusively (one process wins, whatever
the timing), already locked (``flock``), and holds the lock for the run's
life (the kernel drops it when the process ends, however it ends): a second
run is refused before it starts anything, and its message says whether the
id is in use by a run under way (the lock is held) or was used before. The
run's own log lines then go into the claimed file (its handlers append).

An automatic id (no ``--run-id``: the time to the second) that is taken, by a
run started in the same second into the same directory or one before it, is
not refused: the claim takes the first free one of ``ID-2``, ``ID-3``, ...
(as the daemon and ``rigd reprocess`` name a second of one name), and the
run goes on under it. An id the user gave is never changed: it is refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

__all__ = ["RunIdClaim", "claim_run_id"]


#: The most suffixes (``-2`` ... ``-N``) an automatic id is tried with.
_MOST_SUFFIXES = 1000


class RunIdClaim:
    """A run id, ``run_id``, held by this process through its log file ``path``;
    ``release`` ends it (and removes the log when nothing was ever written to it)."""

    def __init__(self, path: Path, fd: int, run_id: str) -> None:
        self.path = path
        self.run_id = run_id
        self._fd: int | None = fd
        self._inode = os.fstat(fd).st_ino

    def release(self, *, keep: bool = True) -> None:
        """Let the id go (idempotent). ``keep=False``: the run left no file, so a log
        still empty (the start ended before anything was logged) is removed too,
        and the id can be used again."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            info = os.stat(self.path)
            if not keep and info.st_ino == self._inode and info.st_size == 0:
                self.path.unlink()
        os.close(self._fd)  # the lock goes with it
        self._fd = None


def claim_run_id(path: Path, run_id: str, *, automatic: bool = False) -> RunIdClaim:
    """Claim ``run_id`` by creating its log ``path`` (and its directory) exclusively,
    locked until ``release`` or this process's end.

    ``automatic``: ``run_id`` was chosen by rigd (``rigd run`` without
    ``--run-id``), so when it is taken the first free ``ID-2``, ``ID-3``, ...
    is claimed instead (its log beside ``path``); the claim's ``run_id`` says
    which.

    Raises:
        FileExistsError: the log exists (``automatic``: and so do those of
            ``ID-2`` ... ``ID-1000``): the message, one line, says whether
            a run under way holds the id (give another ``--run-id``, or wait
            for it to end) or a run used it before (give another ``--run-id``).
        OSError: the directory cannot be made or written (``NotADirectoryError``:
            a file is where it goes).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where the directory goes
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path.parent)) from None
    tries = range(1, _MOST_SUFFIXES + 1) if automatic else (1,)
    for n in tries:
        candidate = run_id if n == 1 else f"{run_id}-{n}"
        where = path if n == 1 else path.with_name(f"{candidate}{path.suffix}")
        try:
            return RunIdClaim(where, _created_locked(where), candidate)
        except FileExistsError:
            continue
    raise FileExistsError(_taken(path, run_id))


def _created_locked(path: Path) -> int:
    """A new file ``path``, already locked when it appears: an unnamed file
    (``O_TMPFILE``), locked, then linked in place (``linkat`` fails if ``path``
    exists). Where the file system has no ``O_TMPFILE``: created (``O_EXCL``),
    then locked.

    Raises:
        FileExistsError: ``path`` exists.
    """
    flags = os.O_WRONLY | os.O_CLOEXEC
    try:
        fd = os.open(path.parent, flags | getattr(os, "O_TMPFILE", 0), 0o666)
    except OSError:
        fd = -1  # no O_TMPFILE here: as below
    if fd >= 0:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            _link_in(fd, path)
            return fd
        except FileExistsError:
            os.close(fd)
            raise
        except OSError:
            os.close(fd)  # cannot link it in (no /proc): as below
    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _link_in(fd: int, path: Path) -> None:
    """Give the unnamed file ``fd`` the name ``path`` (``open(2)``'s way for
    ``O_TMPFILE``: ``linkat`` of ``/proc/self/fd/N`` with ``AT_SYMLINK_FOLLOW``)."""
    proc = os.open("/proc/self/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.link(str(fd), path, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)


def _in_use(path: Path) -> bool:
    """Whether a live process holds ``path``'s claim (its lock); a log that
    vanished meanwhile was a failed start's, given back just now."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _taken(path: Path, run_id: str) -> str:
    if _in_use(path):
        return (
            f"run id {run_id!r} is in use by another rigd run under way here ({path} is "
            "held); give another --run-id, or wait for that run to end (a start that fails "
            "gives its id back); nothing was started"
        )
    return (
        f"run id {run_id!r} was used before here ({path} exists); a run is never "
        "recorded over: give another --run-id; nothing was started"
    )
