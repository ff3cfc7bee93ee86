#!/usr/bin/env python3
"""Where a long write goes: bench/record.py's ring figure, traced from outside.

A producer puts 2048x2048 uint16 frames at ``--rate`` MB/s into a 32-slot
lossless ring; a recorder process writes them (``write_buffers=0``, as the
pipeline's recorder). Traced: each put's time and the ring's fill before
it, each write's time, ``/proc/meminfo`` Dirty/Writeback and the recorder
threads' state and ``wchan`` every 10 ms (``balance_dirty_pages`` there is
dirty-page throttling; ``R`` is running or runnable), and both processes'
``schedstat`` (time on a CPU, time runnable but waiting). For the system
calls, run beside it: ``strace -f -T -tt -e
trace=pwrite64,fsync,fdatasync,sync_file_range -p RECORDER_PID``.

    flock /tmp/rigd-bench.lock .venv/bin/python bench/record_trace.py \\
        --dir /tmp/bench-trace --rate 185 --seconds 60
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from record import BIG, realistic

from rigd.storage import FrameRing, RunWriter, StreamSpec


def recorder(segment: str, path: str, ready: Any, done: Any) -> None:
    ring = FrameRing.attach(segment)
    reader = ring.reader("lossless")
    writer = RunWriter(path, [StreamSpec("cam", BIG, np.uint16)], run_id="t", write_buffers=0)
    ready.set()
    took = []
    for frame in reader:
        start = time.perf_counter()
        writer.write("cam", frame.array, frame.frame_id, frame.timestamp_ns)
        took.append(time.perf_counter() - start)
        reader.release(frame)
    writer.close()
    stats = writer.statistics()
    done.put((took, stats.max_flush_s, stats.max_fsync_s))
    reader.close()
    ring.close()


def meminfo() -> tuple[int, int]:
    values = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, value = line.split(":")
            values[key] = int(value.split()[0]) // 1024
    return values["Dirty"], values["Writeback"]


def thread_states(pid: int) -> list[str]:
    states = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                state = f.read().rsplit(") ", 1)[1].split()[0]
            with open(f"/proc/{pid}/task/{tid}/wchan") as f:
                states.append(f"{state}:{f.read()}")
        except OSError:
            pass
    return states


def schedstat(pid: int) -> tuple[int, int]:
    on_cpu = waiting = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                a, b, _ = f.read().split()
        except OSError:
            continue
        on_cpu += int(a)
        waiting += int(b)
    return on_cpu, waiting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="bench-data")
    parser.add_argument("--rate", type=float, default=185.0, help="MB/s offered")
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    frames = [realistic(BIG, k) for k in range(4)]
    path = directory / "trace.h5"
    ctx = mp.get_context("spawn")
    samples: list[tuple[int, int, list[str]]] = []
    stop = threading.Event()
    with FrameRing.create("record-trace", BIG, np.uint16, slot_count=32) as ring:
        ready, done = ctx.Event(), ctx.Queue()
        proc = ctx.Process(target=recorder, args=(ring.name, str(path), ready, done))
        proc.start()
        ready.wait(60)
        assert proc.pid is not None

        def sample() -> None:
            while not stop.wait(0.01):
                samples.append((*meminfo(), thread_states(proc.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        writer = ring.writer()
        period = frames[0].nbytes / (args.rate * 1e6)
        puts: list[tuple[float, int]] = []
        before = schedstat(proc.pid), schedstat(os.getpid())
        start = time.perf_counter()
        k = 0
        while time.perf_counter() - start < args.seconds:
            due = start + k * period
            if time.perf_counter() < due:
                time.sleep(due - time.perf_counter())
            fill = ring.statistics().fill
            t = time.perf_counter()
            writer.put(frames[k % 4], frame_id=k)
            puts.append((time.perf_counter() - t, round(fill * 32)))
            k += 1
        elapsed = time.perf_counter() - start
        after = schedstat(proc.pid), schedstat(os.getpid())
        writer.close()
        took, max_flush, max_fsync = done.get(timeout=600)
        proc.join(60)
        stop.set()
        sampler.join()
    path.unlink()
    durations = sorted(p[0] for p in puts)
    full = sum(1 for p in puts if p[1] >= 32)
    print(
        f"{k} frames at {args.rate:.0f} MB/s for {args.seconds:.0f} s: put p50"
        f" {durations[len(durations) // 2] * 1e3:.1f} ms, longest {durations[-1] * 1e3:.1f} ms;"
        f" {full} puts found the ring full"
    )
    for took_s, fill in sorted(puts, reverse=True)[:5]:
        print(f"    put {took_s * 1e3:6.1f} ms with {fill}/32 slots filled before it")
    took.sort()
    print(
        f"recorder's writes: p50 {took[len(took) // 2] * 1e3:.1f} ms, longest"
        f" {took[-1] * 1e3:.1f} ms; longest flush {max_flush * 1e3:.1f} ms, fsync"
        f" {max_fsync * 1e3:.1f} ms"
    )
    print(f"Dirty <= {max(s[0] for s in samples)} MB, Writeback <= {max(s[1] for s in samples)} MB")
    busy = Counter(s for sample in samples for s in sample[2] if s != "S:futex_do_wait")
    print(f"recorder threads, not idle ({len(samples)} samples): {busy.most_common(6)}")
    (rec0, prod0), (rec1, prod1) = before, after
    print(
        f"recorder: {(rec1[0] - rec0[0]) / 1e9 / elapsed:.2f} cores on CPU,"
        f" {(rec1[1] - rec0[1]) / 1e9 / elapsed:.2f} runnable but waiting;"
        f" producer: {(prod1[0] - prod0[0]) / 1e9 / elapsed:.2f} on CPU,"
        f" {(prod1[1] - prod0[1]) / 1e9 / elapsed:.2f} waiting"
    )


if __name__ == "__main__":
    main()
