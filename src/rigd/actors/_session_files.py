"""A session's files on disk: how they are named, and removing them once
their owner is dead (a crashed driver's, or an orphaned worker's session).

Names carry the owner's pid (``rigd-<pid>-<random>``), so what a crashed
driver left behind is recognised and removed by the next one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time

from rigd._proc import pid_alive
from rigd.actors._wire import SHM_DIR, sweep_segments

__all__ = ["SESSION_PREFIX", "cleanup_after_lost_head", "sweep_stale_sessions"]

log = logging.getLogger(__name__)

SESSION_PREFIX = "rigd-"

# A session's names: rigd-<pid>-<6 hex>-<mkdtemp's suffix> (its directory),
# rigd-<pid>-<6 hex>-<mkdtemp's suffix>-... (its segments) and rigd-<pid>-ring-...
# (its rings). Nothing else is a
# session's, e.g. not a daemon's runtime directory /tmp/rigd-<uid>.
_SESSION_NAME = re.compile(rf"^{SESSION_PREFIX}([1-9][0-9]*)-([0-9a-f]{{6}}|ring)-")


def _owner_pid(name: str) -> int | None:
    match = _SESSION_NAME.match(name)
    return int(match.group(1)) if match else None


def sweep_stale_sessions() -> int:
    """Remove session directories and segments whose owner process is dead.

    Returns:
        How many directories and segments were removed.
    """
    removed = 0
    tmp = tempfile.gettempdir()
    for directory in (tmp, SHM_DIR):
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            continue
        for name in names:
            pid = _owner_pid(name)
            if pid is None or pid == os.getpid() or pid_alive(pid):
                continue
            path = os.path.join(directory, name)
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            # Only our own files, and never a live daemon's address.
            if info.st_uid != os.geteuid() or os.path.exists(os.path.join(path, "daemon.json")):
                continue
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    continue
            removed += 1
    if removed:
        log.info("removed %d files left by crashed rigd sessions", removed)
    return removed


def cleanup_after_lost_head(
    session_dir: str, shm_prefix: str, *, owner_dead: bool = False, wait_s: float = 0.0
) -> None:
    """Remove the session's files if its owner is dead (called by orphaned workers).

    Args:
        session_dir: the session's socket directory.
        shm_prefix: the prefix of its segments.
        owner_dead: the caller knows the owner is dead (its parent changed).
        wait_s: how long to wait for a dying owner to be gone.
    """
    pid = _owner_pid(os.path.basename(session_dir))
    # The owner's threads end one by one: its socket can close a moment
    # before the process is gone. Wait for that, briefly.
    deadline = time.monotonic() + wait_s
    while not owner_dead and pid is not None and pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.002)
    if owner_dead or (pid is not None and not pid_alive(pid)):
        shutil.rmtree(session_dir, ignore_errors=True)
        sweep_segments(shm_prefix)
        if pid is not None:  # and the rings the dead head made (a killed node supervisor's)
            sweep_segments(f"{SESSION_PREFIX}{pid}-ring-")
