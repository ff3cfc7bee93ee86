"""How a ring's readers wait for a frame: the futex sleep and the low-latency wait.

Waiting sleeps in the kernel on futex words (``data`` for readers, ``space``
for the writer), in slices of ``CHECK_S`` so a dead peer is noticed: a
lossless reader whose process is gone is dropped and stops holding the
writer back; a reader whose writer is gone drains, then gets
``RingBrokenError``. A reader with no writer attached has nobody to check
and sleeps in ``IDLE_CHECK_S`` slices: an idle ring then costs well under
0.1% of a core.

Low-latency readers (``LowLatencyWait``) sleep on a third word, ``announce``:
the writer bumps it when it opens a slot (or when told a frame is coming,
``RingWriter.announce``), and the reader then spins for the commit. Its
wake-up, tens of microseconds on a VM, overlaps the filling of the slot
instead of following the commit. On a regular stream it also sleeps until
just before the next frame is due and spins for it.
"""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol

from rigd.storage._futex import futex_wait
from rigd.storage._ring_segment import RingSegment

# How often a sleeping side looks for a dead peer. Each check reads /proc
# (about 10 us); 100 ms bounds how long a dead peer can go unnoticed.
CHECK_S = 0.1
IDLE_CHECK_S = 1.0
# A low-latency reader of a regular stream sleeps until this long before the
# next frame is due, then spins (at most SPIN_MAX_NS) instead of paying the
# kernel's wake-up of a sleeping process (about 50 us on the development VM).
SPIN_LEAD_NS = 60_000
SPIN_MAX_NS = 250_000
_PR_SET_TIMERSLACK = 29


class Announcer(Protocol):
    """A ring writer a reader passes its announcements on to."""

    def announce(self) -> None: ...


def sleep_flagged(flags: Any, index: int, futex: int, expected: int, timeout: float) -> bool:
    """Sleep on ``futex`` with reader ``index``'s flag up in ``flags`` (the
    writer wakes only flagged sleepers); return whether it was woken before
    ``timeout`` seconds."""
    flags[index] = 1
    woken = futex_wait(futex, expected, timeout)
    flags[index] = 0
    return woken


def tighten_timer_slack() -> None:
    """Let this thread's timed sleeps end on time (Linux's default slack is 50 us)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_TIMERSLACK, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: sleeps are as precise as the system makes them


class LowLatencyWait:
    """One low-latency reader's wait, and what it learns of the stream's timing."""

    def __init__(self, segment: RingSegment, index: int) -> None:
        self._seg = segment
        self._hdr = segment.hdr
        self._index = index
        # The last commit time and the stream's period (smoothed).
        self._last_commit_ns = 0
        self._period_ns = 0
        # Timer slack is per thread: tightened for the thread that reads.
        self._slack_thread = 0
        # How late this thread's timed sleeps wake, smoothed.
        self._late_ns = 0
        # The frame this reader last spun for after its announcement.
        self._spun_for = -1

    def learn(self, commit_ns: int) -> None:
        """Take the commit time of a frame read into the period estimate."""
        if self._last_commit_ns:
            gap = commit_ns - self._last_commit_ns
            # A stream that stalls (gap > 4 periods) starts its estimate over.
            if not self._period_ns or gap > 4 * self._period_ns:
                self._period_ns = gap
            else:
                self._period_ns = (7 * self._period_ns + gap) // 8
        self._last_commit_ns = commit_ns

    def wait(
        self,
        expected: int,
        expected_announce: int,
        head: int,
        left: float,
        announces: Sequence[Announcer],
    ) -> bool:
        """Wait a while for frame ``head`` (at most ``left`` seconds); the
        caller then looks again. Returns True when a sleep ran out without a
        wake-up (the caller checks that the writer lives)."""
        hdr = self._hdr
        if self._slack_thread != threading.get_ident():
            tighten_timer_slack()
            self._slack_thread = threading.get_ident()
        if int(hdr.announced) > head:
            if self._spun_for != head:
                # The frame is on its way: spin for its commit, briefly.
                self._spun_for = head
                # Pass the announcement on now, while there is time to
                # spare: the syscall that wakes a reader downstream
                # would cost the frame tens of microseconds later.
                for writer in announces:
                    writer.announce()
                until = time.monotonic_ns() + SPIN_MAX_NS
                while hdr.data_futex == expected and time.monotonic_ns() < until:
                    pass
                return False
            # Announced long ago and still not committed: sleep until it is.
            seg = self._seg
            return not sleep_flagged(hdr.waiting, self._index, seg.data_addr, expected, left)
        if self._period_ns:
            due = self._last_commit_ns + self._period_ns
            now = time.monotonic_ns()
            if now < due + SPIN_MAX_NS:
                # Wake up early enough for this machine's timers: the lead
                # grows with how late timed sleeps wake (~140 us on a VM).
                lead = SPIN_LEAD_NS + 2 * self._late_ns
                if due - lead > now:
                    # Sleep (woken early by an announcement) ...
                    sleep_s = min((due - lead - now) / 1e9, left)
                    if not self._sleep_until_announced(expected_announce, sleep_s):
                        late = time.monotonic_ns() - (now + int(sleep_s * 1e9))
                        self._late_ns = (7 * self._late_ns + max(0, late)) // 8
                    return False
                # ... then spin for the announcement, briefly.
                until = due + SPIN_MAX_NS
                while hdr.announce_futex == expected_announce and time.monotonic_ns() < until:
                    pass
                return False
        # Every commit is announced first: sleep until the next one.
        return not self._sleep_until_announced(expected_announce, left)

    def _sleep_until_announced(self, expected: int, timeout: float) -> bool:
        return sleep_flagged(
            self._hdr.announce_waiting, self._index, self._seg.announce_addr, expected, timeout
        )
