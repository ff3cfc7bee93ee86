"""Which calls an actor process started: a small table that outlives a SIGKILL.

When an actor's process dies, its callers must tell the calls it may have
started (retried only as ``max_task_retries`` allows) from the calls it
never read (resent to the restarted actor without spending an attempt, when
``max_task_retries`` is not 0; with 0, every call sent to the dead process
fails, as in Ray 2). Nothing the process says before dying can be trusted to arrive,
so it keeps the answer in a shared file mapping: one slot per calling
process, holding that caller's pid and the id of the last call the actor
started from it. Calls from one caller start in the order sent, so every
call with a higher id was never started. Writing a slot costs ~0.1 us per call.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct

__all__ = ["StartedTable", "last_started", "table_path"]

#: Callers one actor process tracks; beyond that, its callers treat every
#: call in flight as started (the behaviour without the table).
SLOTS = 4096
_WORD = 8
# Word 0: how many slots are used; then (pid, last started call id) per slot.
_SIZE = _WORD * (1 + 2 * SLOTS)
UNKNOWN = -1


def table_path(session_dir: str, actor_id: str, incarnation: int) -> str:
    """The file of one incarnation (process) of one actor."""
    return os.path.join(session_dir, f"a-{actor_id}-{incarnation}.calls")


class StartedTable:
    """The actor process's side: note each call as it starts."""

    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.ftruncate(fd, _SIZE)  # sparse: pages appear as slots are used
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self.words = memoryview(self._map).cast("q")
        self._slots: dict[int, int] = {}

    def slot_for(self, conn: socket.socket) -> int:
        """The word to write a connection's started call ids to (0: not tracked)."""
        try:
            creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return 0
        pid = struct.unpack("3i", creds)[0]
        slot = self._slots.get(pid)
        if slot is None:
            used = self.words[0]
            if used >= SLOTS:
                return 0
            slot = self._slots[pid] = used
            self.words[1 + 2 * slot] = pid
            self.words[0] = used + 1
        index = 2 + 2 * slot
        self.words[index] = 0  # a new connection numbers its calls from 1
        return index


def last_started(path: str, pid: int) -> int:
    """The id of the last call from ``pid`` the actor process started.

    0 when it started none (or the process died before making its table);
    ``UNKNOWN`` when it did not track ``pid``.
    """
    try:
        with open(path, "rb") as f:
            data = f.read(_SIZE)
    except FileNotFoundError:
        return 0
    if len(data) < _SIZE:
        return 0
    words = memoryview(data).cast("q")
    used = words[0]
    for slot in range(min(used, SLOTS)):
        if words[1 + 2 * slot] == pid:
            return int(words[2 + 2 * slot])
    return UNKNOWN if used >= SLOTS else 0
