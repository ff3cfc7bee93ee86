"""Futexes on shared memory, through ctypes: sleep in the kernel, wake in microseconds.

A futex is a 32-bit word in memory that processes sleep on until another
process changes it and calls wake. Waiting costs no CPU; a wake costs one
system call (3.5 us through ctypes on the development VM). The waits here
are shared (not FUTEX_PRIVATE), so they work across processes that map the
same file. ctypes releases the GIL around the call.

A thread can ask to be told before it next sleeps on a futex
(``call_before_sleeping``): a scheduler that steps several actors on one
thread hands the other actors threads of their own the moment one step would
sleep waiting for them (``rigd.pipeline``'s inline replay).
"""

from __future__ import annotations

import ctypes
import errno
import platform
import threading
from collections.abc import Callable

__all__ = ["call_before_sleeping", "futex_wait", "futex_wake"]

_SYS_FUTEX = {"x86_64": 202, "aarch64": 98}.get(platform.machine())
_FUTEX_WAIT = 0
_FUTEX_WAKE = 1
_WAKE_ALL = 0x7FFFFFFF


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
# A second prototype of the same symbol for waking: with argtypes set, ctypes
# converts plain ints itself (about 1 us less per call than wrapping them).
_wake = ctypes.CFUNCTYPE(
    ctypes.c_long,
    ctypes.c_long,
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_void_p,
    ctypes.c_void_p,
    ctypes.c_int,
    use_errno=True,
)(("syscall", _libc))


_local = threading.local()


def call_before_sleeping(hook: Callable[[], None] | None) -> None:
    """Call ``hook`` (once, then forget it) the next time this thread is about to
    sleep in ``futex_wait``; ``None`` forgets a hook not called yet.

    The hook runs on this thread, before the sleep; whatever it raises, the
    wait raises.
    """
    _local.hook = hook


def futex_wait(address: int, expected: int, timeout_s: float) -> bool:
    """Sleep while the word at ``address`` holds ``expected``, at most ``timeout_s``.

    Returns:
        ``False`` if the wait timed out, ``True`` otherwise (woken, the word
        had already changed, or a signal: callers re-check their condition).
    """
    hook = getattr(_local, "hook", None)
    if hook is not None:
        _local.hook = None
        hook()
    if _SYS_FUTEX is None:  # pragma: no cover - other machines sleep briefly instead
        import time

        time.sleep(min(timeout_s, 0.0005))
        return True
    seconds = int(timeout_s)
    ts = _Timespec(seconds, int((timeout_s - seconds) * 1e9))
    rc = _syscall(
        _SYS_FUTEX,
        ctypes.c_void_p(address),
        _FUTEX_WAIT,
        ctypes.c_uint32(expected),
        ctypes.byref(ts),
        None,
        0,
    )
    return not (rc == -1 and ctypes.get_errno() == errno.ETIMEDOUT)


def futex_wake(address: int) -> None:
    """Wake every process sleeping on the word at ``address``."""
    if _SYS_FUTEX is not None:
        _wake(_SYS_FUTEX, address, _FUTEX_WAKE, _WAKE_ALL, None, None, 0)
