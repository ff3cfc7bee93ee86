#!/usr/bin/env python3
"""Frame rings: rigd's FrameRing against multiprocessing.Queue and a plain copy.

Every figure comes from one run, writer and readers in separate processes:

- the physical limit: a numpy copy of the frame into rotating buffers;
- the peer: the same frames through ``multiprocessing.Queue``;
- rigd: writer -> 1 lossless reader (copy in, and in-place fill), 512x512
  frames/s, wake-up latency at 1 kHz, 1 writer -> 3 readers (2 lossless,
  1 latest), and the CPU an idle ring with a waiting reader costs.

    .venv/bin/python bench/ring.py
"""

from __future__ import annotations

import multiprocessing as mp
import os
import resource
import sys
import time
from typing import Any

import numpy as np

from rigd.exceptions import EndOfStream
from rigd.pipeline import CpuLatencyRequest
from rigd.storage import FrameRing

BIG = (2048, 2048)
SMALL = (512, 512)
SECONDS = 3.0


def copy_rate(shape: tuple[int, int], seconds: float = 1.5) -> float:
    """Frames/s of a plain copy into 16 rotating buffers: the ceiling."""
    src = np.random.default_rng(0).integers(0, 4096, shape, dtype=np.uint16)
    bufs = [np.empty_like(src) for _ in range(16)]
    n = 0
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        np.copyto(bufs[n % 16], src)
        n += 1
    return n / (time.perf_counter() - t)


def _reader_proc(name: str, policy: str, ready: Any, out: Any) -> None:
    ring = FrameRing.attach(name)
    low_latency = policy.endswith("+lowlat")
    reader = ring.reader(policy.removesuffix("+lowlat"), low_latency=low_latency)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    ready.set()
    n = 0
    checksum = 0
    latencies = []
    t0 = None
    try:
        while True:
            frame = reader.get(timeout=30)
            # Slots are stamped at commit with time.time_ns() (the ring's default).
            now = time.time_ns()
            if t0 is None:
                t0 = time.perf_counter()
            latencies.append(now - frame.timestamp_ns)
            checksum += int(frame.array[0, 0])
            reader.release(frame)
            n += 1
    except EndOfStream:
        pass
    dt = time.perf_counter() - (t0 or time.perf_counter())
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    stats = ring.statistics().readers[reader.index]
    out.put(
        {
            "cpu_share": cpu / max(dt, 1e-9),
            "frames": n,
            "seconds": dt,
            "dropped": stats.frames_dropped,
            "latency_ns": latencies,
            "checksum": checksum,
        }
    )
    reader.close()
    ring.close()


def run_ring(
    shape: tuple[int, int], policies: list[str], mode: str, seconds: float, rate_hz: float = 0.0
) -> dict[str, Any]:
    """Writer in this process, readers in child processes."""
    ctx = mp.get_context("spawn")
    with FrameRing.create(
        f"bench-{os.getpid()}-{time.monotonic_ns()}", shape, np.uint16, slot_count=8
    ) as ring:
        out = ctx.Queue()
        procs = []
        for policy in policies:
            ready = ctx.Event()
            p = ctx.Process(target=_reader_proc, args=(ring.name, policy, ready, out))
            p.start()
            ready.wait(30)
            procs.append(p)
        writer = ring.writer()
        src = np.random.default_rng(0).integers(0, 4096, shape, dtype=np.uint16)
        n = 0
        t = time.perf_counter()
        period = 1.0 / rate_hz if rate_hz else 0.0
        next_t = t
        while time.perf_counter() - t < seconds:
            if period:
                next_t += period
                while time.perf_counter() < next_t:
                    pass  # pacing the writer precisely, as a camera would
            if mode == "copy":
                writer.put(src)
            else:
                with writer.slot():
                    pass  # a camera SDK would fill the view here
            n += 1
        dt = time.perf_counter() - t
        stats = ring.statistics()
        writer.close()
        results = [out.get(timeout=60) for _ in procs]
        for p in procs:
            p.join(30)
    return {"frames": n, "fps": n / dt, "writer_wait_s": stats.writer_wait_s, "readers": results}


def _queue_reader(q: Any, out: Any) -> None:
    n = 0
    t0 = None
    while True:
        item = q.get()
        if item is None:
            break
        if t0 is None:
            t0 = time.perf_counter()
        n += 1
    out.put((n, time.perf_counter() - (t0 or time.perf_counter())))


def run_queue(shape: tuple[int, int], seconds: float) -> float:
    ctx = mp.get_context("spawn")
    q = ctx.Queue(maxsize=8)
    out = ctx.Queue()
    p = ctx.Process(target=_queue_reader, args=(q, out))
    p.start()
    src = np.random.default_rng(0).integers(0, 4096, shape, dtype=np.uint16)
    q.put(src)
    n = 1
    t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        q.put(src)
        n += 1
    q.put(None)
    got, _ = out.get(timeout=60)
    dt = time.perf_counter() - t
    p.join(30)
    return got / dt


def _idle_reader(name: str, ready: Any, out: Any) -> None:
    ring = FrameRing.attach(name)
    reader = ring.reader()
    ready.set()
    before = resource.getrusage(resource.RUSAGE_SELF)
    t = time.perf_counter()
    try:
        reader.get(timeout=10.0)
    except TimeoutError:
        pass
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    out.put(cpu / (time.perf_counter() - t))
    reader.close()
    ring.close()


def idle_cpu() -> float:
    ctx = mp.get_context("spawn")
    with FrameRing.create(f"idle-{os.getpid()}", SMALL, np.uint16, slot_count=4) as ring:
        out = ctx.Queue()
        ready = ctx.Event()
        p = ctx.Process(target=_idle_reader, args=(ring.name, ready, out))
        p.start()
        ready.wait(30)
        share = out.get(timeout=60)
        p.join(30)
    return share


def _pipe_waker(r: int, w: int, out: Any) -> None:
    os.close(w)  # else this process holds the pipe open and never sees its end
    latencies = []
    while True:
        data = os.read(r, 8)
        now = time.monotonic_ns()
        if len(data) < 8:
            break
        latencies.append(now - int.from_bytes(data, "little"))
    out.put(latencies)


def pipe_wake(rate_hz: float = 1000, seconds: float = 3.0) -> list[int]:
    """One-way wake-up through a pipe at ``rate_hz``: the physical limit."""
    ctx = mp.get_context("fork")
    r, w = os.pipe()
    out = ctx.Queue()
    p = ctx.Process(target=_pipe_waker, args=(r, w, out))
    p.start()
    os.close(r)
    period = 1.0 / rate_hz
    t = next_t = time.perf_counter()
    while time.perf_counter() - t < seconds:
        next_t += period
        while time.perf_counter() < next_t:
            pass
        os.write(w, time.monotonic_ns().to_bytes(8, "little"))
    os.close(w)
    latencies = out.get(timeout=30)
    p.join(30)
    return latencies


def pct(values: list[int], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * q))] / 1e3


def main() -> None:
    print("measuring ...", file=sys.stderr)
    copy_big = copy_rate(BIG)
    copy_small = copy_rate(SMALL)
    queue_big = run_queue(BIG, SECONDS)
    queue_small = run_queue(SMALL, SECONDS)
    big_copy = run_ring(BIG, ["lossless"], "copy", SECONDS)
    big_fill = run_ring(BIG, ["lossless"], "fill", SECONDS)
    small = run_ring(SMALL, ["lossless"], "copy", SECONDS)
    three = run_ring(BIG, ["lossless", "lossless", "latest"], "copy", SECONDS)
    paced = run_ring((64, 64), ["lossless"], "fill", SECONDS, rate_hz=1000)
    paced_ll = run_ring((64, 64), ["lossless+lowlat"], "fill", SECONDS, rate_hz=1000)
    idle = idle_cpu()
    pipe = pipe_wake()
    # The same wake-ups with the CPUs held to fast wake-ups (PM QoS, as a
    # pipeline's `realtime: {cpu_latency_us: 0}` does; needs root).
    held = CpuLatencyRequest(0)
    was_held = held.held
    try:
        paced_q = run_ring((64, 64), ["lossless"], "fill", SECONDS, rate_hz=1000)
        paced_ll_q = run_ring((64, 64), ["lossless+lowlat"], "fill", SECONDS, rate_hz=1000)
        pipe_q = pipe_wake()
    finally:
        held.release()

    lat = paced["readers"][0]["latency_ns"]
    lat_ll = paced_ll["readers"][0]["latency_ns"]
    rows = [
        ("2048x2048 uint16: plain copy (limit), frames/s", f"{copy_big:.0f}"),
        ("2048x2048 uint16: multiprocessing.Queue, frames/s", f"{queue_big:.0f}"),
        ("2048x2048 uint16: ring, put (copy in), frames/s", f"{big_copy['fps']:.0f}"),
        ("  ring / plain copy (target >= 0.70)", f"{big_copy['fps'] / copy_big:.2f}"),
        ("  ring / multiprocessing.Queue", f"{big_copy['fps'] / queue_big:.1f}x"),
        ("2048x2048 uint16: ring, in-place fill, frames/s", f"{big_fill['fps']:.0f}"),
        ("  ring overhead per frame, us (target <= 20)", f"{1e6 / big_fill['fps']:.1f}"),
        ("512x512 uint16: plain copy (limit), frames/s", f"{copy_small:.0f}"),
        ("512x512 uint16: multiprocessing.Queue, frames/s", f"{queue_small:.0f}"),
        ("512x512 uint16: ring, put, frames/s (target >= 20000)", f"{small['fps']:.0f}"),
        ("wake-up latency at 1 kHz, p50 us (target <= 30)", f"{pct(lat, 0.5):.1f}"),
        ("wake-up latency at 1 kHz, p99 us (target <= 300)", f"{pct(lat, 0.99):.1f}"),
        ("  low-latency reader, p50 us", f"{pct(lat_ll, 0.5):.1f}"),
        ("  low-latency reader, p99 us", f"{pct(lat_ll, 0.99):.1f}"),
        (
            "  low-latency reader, share of a core at 1 kHz",
            f"{paced_ll['readers'][0]['cpu_share']:.3f}",
        ),
        ("  plain reader, share of a core at 1 kHz", f"{paced['readers'][0]['cpu_share']:.3f}"),
        ("pipe wake-up at 1 kHz (limit), p50 us", f"{pct(pipe, 0.5):.1f}"),
        ("pipe wake-up at 1 kHz (limit), p99 us", f"{pct(pipe, 0.99):.1f}"),
        (f"CPU wake-ups held at 0 us ({'held' if was_held else 'NOT held: needs root'}):", ""),
        (
            "  wake-up latency at 1 kHz, p50 us (target <= 30)",
            f"{pct(paced_q['readers'][0]['latency_ns'], 0.5):.1f}",
        ),
        (
            "  wake-up latency at 1 kHz, p99 us (target <= 300)",
            f"{pct(paced_q['readers'][0]['latency_ns'], 0.99):.1f}",
        ),
        ("  low-latency reader, p50 us", f"{pct(paced_ll_q['readers'][0]['latency_ns'], 0.5):.1f}"),
        (
            "  low-latency reader, p99 us",
            f"{pct(paced_ll_q['readers'][0]['latency_ns'], 0.99):.1f}",
        ),
        ("  pipe wake-up at 1 kHz (limit), p50 us", f"{pct(pipe_q, 0.5):.1f}"),
        ("  pipe wake-up at 1 kHz (limit), p99 us", f"{pct(pipe_q, 0.99):.1f}"),
        ("1 writer -> 3 readers (2 lossless, 1 latest), frames/s", f"{three['fps']:.0f}"),
        ("  3 readers / 1 reader (target >= 0.80)", f"{three['fps'] / big_copy['fps']:.2f}"),
        (
            "  latest reader: frames read, skipped",
            f"{three['readers'][2]['frames']}, {three['readers'][2]['dropped']}",
        ),
        ("idle ring, waiting reader: share of a core (target < 0.005)", f"{idle:.4f}"),
    ]
    lossless_ok = all(r["frames"] == big_copy["frames"] for r in big_copy["readers"])
    rows.append(("lossless reader saw every frame", str(lossless_ok)))
    for label, value in rows:
        print(f"{label:62} {value:>10}")


if __name__ == "__main__":
    main()
