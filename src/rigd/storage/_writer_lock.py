"""Whether a live process writes a run file: a lock its writer holds, that death releases.

A ``RunWriter`` holds an open file description lock (Linux ``F_OFD_SETLK``,
fcntl(2)) on one byte of its run file from the moment it has the file
until the file is sealed. The kernel drops the lock when the writer lets go
of it or when its process ends, however it ends (``kill -9``, the OOM
killer, a crash), so a held lock means a live writer, and an unsealed file
without one is a file its writer left behind (``rigd recover`` seals it).

``recover_run`` takes the same byte exclusively for the length of its
repair: it never repairs a file a writer holds, and a writer never starts
on a file being repaired. It takes a second byte first, and lets it go last,
which only a repair takes: a second ``rigd recover`` of the file meanwhile
is refused on that byte, and so told that a repair holds the file, not a
run. The lock is advisory and separate from HDF5's own (``flock(2)``,
which a SWMR writer lets go of once it switches to SWMR); the bytes lie
far past any file's end, so no data is locked.
Local file systems only: on one that refuses OFD locks the writer records
without the lock (a warning says so) and the file then looks unheld.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import struct
import time

__all__ = [
    "WriterLock",
    "live_writer_message",
    "repair_message",
    "wait_writer_gone",
    "writer_alive",
]

log = logging.getLogger(__name__)

#: The locked byte: far past the end of any real file.
_BYTE = 1 << 62
#: The byte a repair (``recover_run``) holds as well, and a writer never takes.
_REPAIR_BYTE = _BYTE + 1
#: ``struct flock``: l_type, l_whence, l_start, l_len, l_pid (0 for OFD locks).
_FLOCK = "hhqqi4x"
#: What fcntl answers when another open file description holds the byte.
_HELD = (errno.EAGAIN, errno.EACCES)


def _request(kind: int, byte: int = _BYTE) -> bytes:
    return struct.pack(_FLOCK, kind, os.SEEK_SET, byte, 1, 0)


def live_writer_message(path: str | os.PathLike[str]) -> str:
    """The refusal for a file a live writer holds: names the file and what to do."""
    where = os.fspath(path)
    return (
        f"{where} is still being written by a live run (its writer process holds the "
        "file); nothing was changed. The run seals it when it stops: stop the run "
        "(Ctrl-C on `rigd run`, or `rigd stop`), and only if the file is left unsealed "
        f"then, run `rigd recover {where}`"
    )


def repair_message(path: str | os.PathLike[str]) -> str:
    """The refusal for a file another repair (``rigd recover``) holds."""
    return (
        f"{os.fspath(path)} is being repaired by another `rigd recover` (it holds the "
        "file); nothing was changed by this one. Wait for that one to finish: it seals "
        "the file"
    )


def writer_alive(path: str | os.PathLike[str]) -> bool:
    """Whether a live process holds ``path``'s writer lock (asks, takes nothing).

    Raises:
        FileNotFoundError: no such file. OSError: it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        answer = fcntl.fcntl(fd, fcntl.F_OFD_GETLK, _request(fcntl.F_WRLCK))
    except OSError as exc:  # no OFD locks on this file system: nothing can hold one
        log.debug("%s: no OFD lock to ask about (%s)", path, exc)
        return False
    finally:
        os.close(fd)
    return bool(struct.unpack(_FLOCK, answer)[0] != fcntl.F_UNLCK)


def wait_writer_gone(path: str | os.PathLike[str], timeout: float) -> bool:
    """Wait at most ``timeout`` seconds for ``path``'s writer lock to be let go; return
    whether it was. A writer just killed (SIGKILL, not yet reaped) holds the lock
    until the kernel has closed its files: milliseconds.

    Raises:
        FileNotFoundError: no such file. OSError: it cannot be opened.
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while writer_alive(path):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.05)
    return True


class WriterLock:
    """The byte held exclusively on a descriptor of its own, until ``release``.

    Args:
        path: the run file.
        required: True (``recover_run``, a repair): a file system without OFD
            locks raises, and the repair's own byte is held too (taken
            first); False (a writer): it logs a warning and holds nothing.

    Raises:
        OSError: another repair holds the file (``repair_message``), a live
            writer does (``live_writer_message``), or the file cannot be
            opened for writing.
    """

    def __init__(self, path: str | os.PathLike[str], *, required: bool = True) -> None:
        self._fd: int | None = os.open(path, os.O_RDWR)
        byte = _REPAIR_BYTE
        try:
            if required:
                fcntl.fcntl(self._fd, fcntl.F_OFD_SETLK, _request(fcntl.F_WRLCK, byte))
            byte = _BYTE
            fcntl.fcntl(self._fd, fcntl.F_OFD_SETLK, _request(fcntl.F_WRLCK))
        except OSError as exc:
            os.close(self._fd)
            self._fd = None
            if exc.errno in _HELD:
                held = repair_message if byte == _REPAIR_BYTE else live_writer_message
                raise OSError(held(path)) from None
            if required:
                raise
            log.warning("%s: no writer lock on this file system (%s)", path, exc)

    def release(self) -> None:
        """Let go of the lock (idempotent); closing the descriptor drops it (the
        writer's byte first: a repair's own byte is held for longer)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.fcntl(self._fd, fcntl.F_OFD_SETLK, _request(fcntl.F_UNLCK))
            os.close(self._fd)
            self._fd = None
