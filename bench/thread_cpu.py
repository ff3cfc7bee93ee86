"""CPU time per thread of a set of processes, between two instants (psutil).

For the benchmarks' breakdowns: which thread of which process spends how
much CPU per frame (Python threads, libzmq's I/O threads ``ZMQbg/IO/N``,
pyzmq's garbage-collection thread for zero-copy sends).
"""

from __future__ import annotations

from pathlib import Path

import psutil

Sample = dict[tuple[str, int], tuple[str, float, int]]


def _thread_name(pid: int, tid: int) -> str:
    try:
        return Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    except OSError:
        return "?"


def _minor_faults(pid: int, tid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[7])  # minflt (proc(5))


def sample(pids: dict[str, int]) -> Sample:
    """Each thread's name, CPU time so far (user + system, s) and minor page
    faults, by (process label, thread id)."""
    out: Sample = {}
    for label, pid in pids.items():
        try:
            threads = psutil.Process(pid).threads()
        except psutil.NoSuchProcess:
            continue
        for t in threads:
            cpu = t.user_time + t.system_time
            out[label, t.id] = (_thread_name(pid, t.id), cpu, _minor_faults(pid, t.id))
    return out


def per_frame(before: Sample, after: Sample, frames: int, floor_us: float = 2.0) -> list[str]:
    """Lines ``label thread us/frame faults/frame`` for the threads that spent
    ``floor_us`` or more per frame between the two samples, and a total."""
    lines = []
    total = 0.0
    for key in sorted(after):
        if key not in before:
            continue
        name, cpu, faults = after[key]
        spent = (cpu - before[key][1]) * 1e6 / max(frames, 1)
        faulted = (faults - before[key][2]) / max(frames, 1)
        total += spent
        if spent >= floor_us:
            lines.append(
                f"      {key[0]:>9} {name:<16} {spent:7.0f} us/frame {faulted:6.1f} faults/frame"
            )
    lines.append(f"      {'all':>9} {'':<16} {total:7.0f} us/frame")
    return lines
