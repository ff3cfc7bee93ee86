"""The C heap of a process that receives large ZMQ messages, set for frames.

libzmq's I/O thread ``malloc``s each received message of more than 8 KiB
(its decoder's batch) and the reader ``free``s it once its data is copied
into a ring slot. With glibc's defaults a freed message of a few hundred
KiB ends up on top of the I/O thread's heap and is given back to the kernel
at once (``M_TRIM_THRESHOLD``, 128 KiB until glibc adjusts it), so the
next message faults its pages in again: measured at 512x512 uint16 (512
KiB) over loopback, 39 page faults per frame in the receiver's I/O thread,
which doubled its CPU time (170 us instead of 80 us per frame) and halved
a bridge's throughput. Messages of more than ``M_MMAP_THRESHOLD`` are
``mmap``ed and ``munmap``ed each time, with the same effect.

``keep_heap_for`` raises both thresholds (``mallopt(3)``) so that a freed
message stays in the heap for the next: the process keeps up to
``keep_frames`` frames' worth of freed memory instead of returning it.
The settings are the process's own (the receiver's, an actor process of
its own); setting them turns glibc's dynamic adjustment of the two off for
that process; they do not change what any call returns. Where the C
library is not glibc (no ``mallopt``), nothing changes.
"""

from __future__ import annotations

import ctypes
import logging

__all__ = ["MMAP_THRESHOLD_MAX", "keep_heap_for"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
#: glibc's largest ``M_MMAP_THRESHOLD`` on 64-bit (``HEAP_MAX_SIZE / 2``):
#: larger messages are always ``mmap``ed.
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
#: Room for the message's header beside its data (libzmq's ``content_t``).
_SLACK = 64 * 1024


def keep_heap_for(nbytes: int, keep_frames: int = 16) -> bool:
    """Let this process's heap keep freed messages of ``nbytes`` bytes.

    Sets ``M_MMAP_THRESHOLD`` above ``nbytes`` (at most ``MMAP_THRESHOLD_MAX``)
    and ``M_TRIM_THRESHOLD`` to ``keep_frames`` such messages, never lowering
    glibc's defaults. Returns whether the C library took both settings
    (``False``: not glibc, or a value it refused; logged, not raised).

    Raises:
        ValueError: ``nbytes`` or ``keep_frames`` is not a positive int.
    """
    for name, value in (("nbytes", nbytes), ("keep_frames", keep_frames)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    mmap_threshold = min(max(nbytes + _SLACK, 128 * 1024), MMAP_THRESHOLD_MAX)
    trim_threshold = max(keep_frames * (nbytes + _SLACK), 2 * mmap_threshold)
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False  # not glibc: its allocator decides
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    trim_threshold = min(trim_threshold, 2**31 - 1)
    took = bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, trim_threshold)
    )
    if not took:
        log.info("mallopt refused the heap's thresholds for %d-byte frames", nbytes)
    return took
