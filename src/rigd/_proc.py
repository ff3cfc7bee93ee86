"""Processes: whether one still runs, and pinning this one to CPUs."""

from __future__ import annotations

import os

__all__ = ["pid_alive", "pin_to_cpus"]


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (dead, not yet reaped) counts as dead."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pin_to_cpus(cpus: tuple[int, ...] | list[int]) -> None:
    """Run every thread of this process on ``cpus`` only (threads started later inherit it).

    Raises:
        OSError: a CPU is not available to this process (offline, or outside
            its cgroup's cpuset).
    """
    wanted = set(cpus)
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), wanted)
        except ProcessLookupError:
            pass  # the thread ended meanwhile
