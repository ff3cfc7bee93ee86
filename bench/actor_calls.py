#!/usr/bin/env python3
"""Actor calls, rigd and Ray side by side in one run, with the physical limit.

The workloads are those of ../shared/peers/ray_bench.py: start-up, actor
creation, sync and pipelined call round trips, and an 8 MB numpy argument.
The same code runs on both, since rigd's API is Ray's: ``fw`` is the
``rigd`` or the ``ray`` module.

Ray runs in its own virtual environment, in a child process of this run:

    python3 -m venv /tmp/ray-venv && /tmp/ray-venv/bin/pip install ray numpy
    .venv/bin/python bench/actor_calls.py --ray-python /tmp/ray-venv/bin/python

Without ``--ray-python`` only rigd and the pipe are measured. The machine is
shared and noisy: compare the ratios, and run it twice.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from types import ModuleType
from typing import Any

import numpy as np

N_SYNC = 2000
N_PIPELINED = 10000
ARRAY_SECONDS = 3.0


def pcts(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    return {
        "p50_us": round(s[len(s) // 2] / 1e3, 1),
        "p99_us": round(s[int(len(s) * 0.99)] / 1e3, 1),
    }


def measure(fw: ModuleType, name: str) -> dict[str, Any]:
    """Run every workload on ``fw`` (rigd or ray); return the figures."""

    @fw.remote
    class Pinger:
        def ping(self):
            return None

        def mean(self, arr):
            return float(arr.mean())

        def pid(self):
            import os

            return os.getpid()

    @fw.remote
    class AsyncPinger:
        async def ping(self):
            return None

    @fw.remote
    class Sleeper:
        def work(self):
            time.sleep(0.001)  # an I/O call: releases the GIL, as a camera SDK would

    @fw.remote(max_restarts=-1)
    class Restartable:
        def pid(self):
            import os

            return os.getpid()

    out: dict[str, Any] = {"framework": name}
    t = time.perf_counter()
    if name == "ray":
        fw.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        fw.init(num_cpus=2)
    out["init_s"] = round(time.perf_counter() - t, 4)
    try:
        # Actor creation: a batch of 10, then one at a time (first reply in).
        t = time.perf_counter()
        actors = [Pinger.remote() for _ in range(10)]
        fw.get([a.ping.remote() for a in actors])
        out["create_batch_ms_per_actor"] = round((time.perf_counter() - t) / 10 * 1e3, 1)
        for a in actors:
            fw.kill(a)
        per = []
        actors = []
        for _ in range(10):
            t0 = time.perf_counter_ns()
            a = Pinger.remote()
            fw.get(a.ping.remote())
            per.append(time.perf_counter_ns() - t0)
            actors.append(a)
        out["create_sequential_ms"] = round(statistics.median(per) / 1e6, 1)
        for a in actors:
            fw.kill(a)

        actor = Pinger.remote()
        for _ in range(200):
            fw.get(actor.ping.remote())
        lat = []
        t = time.perf_counter()
        for _ in range(N_SYNC):
            t0 = time.perf_counter_ns()
            fw.get(actor.ping.remote())
            lat.append(time.perf_counter_ns() - t0)
        out["sync_call"] = {**pcts(lat), "calls_per_s": round(N_SYNC / (time.perf_counter() - t))}

        fw.get([actor.ping.remote() for _ in range(500)])
        t = time.perf_counter()
        fw.get([actor.ping.remote() for _ in range(N_PIPELINED)])
        out["pipelined_calls_per_s"] = round(N_PIPELINED / (time.perf_counter() - t))

        arr = np.random.default_rng(1).integers(0, 4096, size=(2048, 2048), dtype=np.uint16)
        fw.get(actor.mean.remote(arr))
        lat = []
        t = time.perf_counter()
        while time.perf_counter() - t < ARRAY_SECONDS:
            t0 = time.perf_counter_ns()
            fw.get(actor.mean.remote(arr))
            lat.append(time.perf_counter_ns() - t0)
        out["array_8mb"] = {
            **pcts(lat),
            "calls_per_s": round(len(lat) / (time.perf_counter() - t), 1),
        }
        fw.kill(actor)

        # Async actor: sync round trip and pipelined calls.
        aactor = AsyncPinger.remote()
        for _ in range(200):
            fw.get(aactor.ping.remote())
        lat = []
        for _ in range(N_SYNC):
            t0 = time.perf_counter_ns()
            fw.get(aactor.ping.remote())
            lat.append(time.perf_counter_ns() - t0)
        out["async_sync_call"] = pcts(lat)
        t = time.perf_counter()
        fw.get([aactor.ping.remote() for _ in range(N_PIPELINED)])
        out["async_pipelined_calls_per_s"] = round(N_PIPELINED / (time.perf_counter() - t))
        fw.kill(aactor)

        # Threaded actor: 4 threads, 4 callers at once, each call 1 ms of I/O.
        import threading

        sleeper = Sleeper.options(max_concurrency=4).remote()
        fw.get(sleeper.work.remote())

        def caller() -> None:
            for _ in range(300):
                fw.get(sleeper.work.remote())

        threads = [threading.Thread(target=caller) for _ in range(4)]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        out["threaded_4x4_calls_per_s"] = round(1200 / (time.perf_counter() - t))
        fw.kill(sleeper)

        # Restart: SIGKILL of the actor's process to its first successful call.
        import signal

        ractor = Restartable.remote()
        times = []
        for _ in range(5):
            pid = fw.get(ractor.pid.remote())
            t0 = time.perf_counter()
            os.kill(pid, signal.SIGKILL)
            while True:
                try:
                    if fw.get(ractor.pid.remote(), timeout=30) != pid:
                        break
                except Exception:  # the call in flight when it died: try again
                    continue
            times.append(time.perf_counter() - t0)
        out["restart_ms"] = round(statistics.median(times) * 1e3, 1)
        fw.kill(ractor)
    finally:
        t = time.perf_counter()
        fw.shutdown()
        out["shutdown_s"] = round(time.perf_counter() - t, 3)
    return out


PIPE_CHILD = """
import os, sys
r, w = int(sys.argv[1]), int(sys.argv[2])
while True:
    b = os.read(r, 64)
    if not b:
        break
    os.write(w, b)
"""


def pipe_round_trip(n: int = 5000) -> dict[str, float]:
    """The physical limit: a byte to a freshly exec'd process and back."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    child = subprocess.Popen(
        [sys.executable, "-c", PIPE_CHILD, str(r1), str(w2)], pass_fds=(r1, w2)
    )
    os.close(r1)
    os.close(w2)
    for _ in range(200):
        os.write(w1, b"x")
        os.read(r2, 64)
    lat = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        os.write(w1, b"x")
        os.read(r2, 64)
        lat.append(time.perf_counter_ns() - t0)
    os.close(w1)
    child.wait()
    os.close(r2)
    return pcts(lat)


def ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("nan")


def report(
    rigd_fig: dict[str, Any], ray_fig: dict[str, Any] | None, pipe: dict[str, float]
) -> None:
    rows = [
        ("init (s)", rigd_fig["init_s"], ray_fig and ray_fig["init_s"], "lower"),
        (
            "actor creation, batch of 10 (ms/actor)",
            rigd_fig["create_batch_ms_per_actor"],
            ray_fig and ray_fig["create_batch_ms_per_actor"],
            "lower",
        ),
        (
            "actor creation, one at a time (ms)",
            rigd_fig["create_sequential_ms"],
            ray_fig and ray_fig["create_sequential_ms"],
            "lower",
        ),
        (
            "sync call p50 (us)",
            rigd_fig["sync_call"]["p50_us"],
            ray_fig and ray_fig["sync_call"]["p50_us"],
            "lower",
        ),
        (
            "sync call p99 (us)",
            rigd_fig["sync_call"]["p99_us"],
            ray_fig and ray_fig["sync_call"]["p99_us"],
            "lower",
        ),
        (
            "pipelined calls (/s)",
            rigd_fig["pipelined_calls_per_s"],
            ray_fig and ray_fig["pipelined_calls_per_s"],
            "higher",
        ),
        (
            "8 MB argument, sync (calls/s)",
            rigd_fig["array_8mb"]["calls_per_s"],
            ray_fig and ray_fig["array_8mb"]["calls_per_s"],
            "higher",
        ),
        (
            "8 MB argument, sync p50 (us)",
            rigd_fig["array_8mb"]["p50_us"],
            ray_fig and ray_fig["array_8mb"]["p50_us"],
            "lower",
        ),
        (
            "async actor, sync call p50 (us)",
            rigd_fig["async_sync_call"]["p50_us"],
            ray_fig and ray_fig["async_sync_call"]["p50_us"],
            "lower",
        ),
        (
            "async actor, pipelined calls (/s)",
            rigd_fig["async_pipelined_calls_per_s"],
            ray_fig and ray_fig["async_pipelined_calls_per_s"],
            "higher",
        ),
        (
            "restart: SIGKILL to first call (ms)",
            rigd_fig["restart_ms"],
            ray_fig and ray_fig["restart_ms"],
            "lower",
        ),
        (
            "threaded actor, 4 threads x 4 callers (/s)",
            rigd_fig["threaded_4x4_calls_per_s"],
            ray_fig and ray_fig["threaded_4x4_calls_per_s"],
            "higher",
        ),
    ]
    print(f"\n{'workload':44} {'rigd':>10} {'Ray':>10} {'rigd better by':>15}")
    for label, mine, theirs, better in rows:
        if theirs is None:
            print(f"{label:44} {mine:>10} {'-':>10} {'-':>15}")
            continue
        factor = ratio(theirs, mine) if better == "lower" else ratio(mine, theirs)
        print(f"{label:44} {mine:>10} {theirs:>10} {factor:>14}x")
    print(f"{'pipe round trip, p50 (us): physical limit':44} {pipe['p50_us']:>10}")
    print(
        f"{'rigd sync p50 / pipe p50':44} "
        f"{ratio(rigd_fig['sync_call']['p50_us'], pipe['p50_us']):>10}"
    )
    if ray_fig is None:
        return
    targets = [
        (
            "sync call p50 <= 1/5 of Ray's",
            rigd_fig["sync_call"]["p50_us"] <= ray_fig["sync_call"]["p50_us"] / 5,
        ),
        (
            "sync call p50 <= 2x pipe round trip",
            rigd_fig["sync_call"]["p50_us"] <= 2 * pipe["p50_us"],
        ),
        (
            "pipelined >= 5x Ray's",
            rigd_fig["pipelined_calls_per_s"] >= 5 * ray_fig["pipelined_calls_per_s"],
        ),
        (
            "actor creation <= 1/3 of Ray's (batch and one at a time)",
            rigd_fig["create_batch_ms_per_actor"] <= ray_fig["create_batch_ms_per_actor"] / 3
            and rigd_fig["create_sequential_ms"] <= ray_fig["create_sequential_ms"] / 3,
        ),
        ("init <= 1/5 of Ray's", rigd_fig["init_s"] <= ray_fig["init_s"] / 5),
        (
            "8 MB argument >= 3x Ray's",
            rigd_fig["array_8mb"]["calls_per_s"] >= 3 * ray_fig["array_8mb"]["calls_per_s"],
        ),
        (
            "async actor sync call p50 <= 1/5 of Ray's (issue 3)",
            rigd_fig["async_sync_call"]["p50_us"] <= ray_fig["async_sync_call"]["p50_us"] / 5,
        ),
        (
            "async actor pipelined >= 5x Ray's (issue 3)",
            rigd_fig["async_pipelined_calls_per_s"] >= 5 * ray_fig["async_pipelined_calls_per_s"],
        ),
        (
            "restart time <= 1/3 of Ray's (issue 3)",
            rigd_fig["restart_ms"] <= ray_fig["restart_ms"] / 3,
        ),
    ]
    print("\ntargets:")
    for label, ok in targets:
        print(f"  [{'met' if ok else 'MISSED'}] {label}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ray-python", help="python of a virtual environment with Ray")
    parser.add_argument("--only", choices=["rigd", "ray"], help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.only == "ray":
        import ray

        json.dump(measure(ray, "ray"), sys.stdout)
        return

    ray_fig = None
    if args.ray_python:
        print("measuring Ray ...", file=sys.stderr)
        done = subprocess.run(
            [args.ray_python, __file__, "--only", "ray"], capture_output=True, text=True, check=True
        )
        ray_fig = json.loads(done.stdout.strip().splitlines()[-1])
    print("measuring rigd ...", file=sys.stderr)
    import rigd

    rigd_fig = measure(rigd, "rigd")
    pipe = pipe_round_trip()
    if args.json:
        print(json.dumps({"rigd": rigd_fig, "ray": ray_fig, "pipe": pipe}))
    report(rigd_fig, ray_fig, pipe)


if __name__ == "__main__":
    main()
