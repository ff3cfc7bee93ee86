#!/usr/bin/env python3
"""The daemon as lab software meets it: a real ``rigd serve`` driven over HTTP.

- start: ``POST /v1/runs`` sent -> the first frame durable in the run file
  (flushed: a SWMR reader in this process sees it), and ``POST
  /v1/runs/current/stop`` -> answered, the file sealed (the answer comes
  after the seal), over ``--runs`` runs of the demo pipeline;
- load: ``--clients`` clients polling ``GET /v1/status`` every
  ``--poll-ms`` for ``--seconds`` while the demo pipeline (512x512 uint16 at
  200 fps through FrameStats into the recorder) records: dropped frames
  (target 0) and status latency p50/p99 (target p99 < 50 ms);
- keep-alive: request latency on one keep-alive connection, idle
  (``GET /v1/status`` and a refused ``POST``; target p99 < 5 ms);
- disk: a 64 MB tmpfs as the data directory (needs root), a 6.5 MB/s run:
  how long before the disk is full the daemon warns (event ``disk``);
- idle: the daemon's resident memory (target < 150 MB; its spare workers
  shown apart) and CPU over 10 s with a pipeline loaded (target < 1% of a
  core, daemon and workers together).

No peer has a REST service of this kind (Ray Serve serves models, improv
has no API), so the figures stand against the issue's targets.

    .venv/bin/python bench/service.py [--clients 20] [--seconds 30] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import h5py
import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]

DEMO = """\
name: demo
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [512, 512], dtype: uint16, fps: 200, pattern: spot}
  - name: stats
    class: rigd.pipeline.FrameStats
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
links:
  - {link: camera.frames -> stats.frames, slots: 64}
  - {link: camera.frames -> recorder.camera, slots: 64}
  - {link: stats.stats -> recorder.stats, slots: 256}
"""


class Daemon:
    def __init__(self, directory: Path, **settings: Any) -> None:
        self.run_dir = directory / "run"
        config = directory / "service.yaml"
        config.write_text(
            json.dumps(
                {
                    "port": 0,
                    "token_file": str(directory / "token"),
                    "data_dir": str(directory / "data"),
                    "runtime_dir": str(self.run_dir),
                    **settings,
                }
            )
        )
        env = {**os.environ, "RIGD_ADDRESS": str(self.run_dir)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rigd", "serve", "--config", str(config)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not (self.run_dir / "daemon.json").exists():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("the daemon did not start")
            time.sleep(0.01)
        address = json.loads((self.run_dir / "daemon.json").read_text())
        self.url = address["url"]
        self.headers = {"Authorization": f"Bearer {(directory / 'token').read_text().strip()}"}
        self.client = httpx.Client(base_url=self.url, headers=self.headers, timeout=120)
        while True:
            try:
                if self.client.get("/v1/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.01)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json()

    def stop(self) -> int:
        self.client.close()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=120)


def first_frame_durable(path: str, timeout: float = 30) -> float:
    """Wait until a SWMR reader sees a frame in ``path``; the time it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with h5py.File(path, "r", libver=("v110", "v110"), swmr=True) as f:
                if len(f["camera/frame_id"]) > 0:
                    return time.perf_counter()
        except (OSError, KeyError):
            pass
        time.sleep(0.002)
    raise TimeoutError(f"no frame reached {path}")


def bench_start_stop(d: Daemon, runs: int) -> dict[str, list[float]]:
    d.call("PUT", "/v1/pipeline", content=DEMO, headers={"Content-Type": "application/yaml"})
    starts, answers, stops = [], [], []
    for _ in range(runs):
        sent = time.perf_counter()
        run = d.call("POST", "/v1/runs", json={})
        answered = time.perf_counter()
        durable = first_frame_durable(run["files"][0])
        starts.append((durable - sent) * 1e3)
        answers.append((answered - sent) * 1e3)
        time.sleep(1.0)  # let the run record a while
        sent = time.perf_counter()
        stopped = d.call("POST", "/v1/runs/current/stop")
        stops.append((time.perf_counter() - sent) * 1e3)
        with h5py.File(stopped["files"][0], "r") as f:
            assert f.attrs["run_state"] == "complete"
    return {
        "start_to_first_durable_ms": starts,
        "start_answered_ms": answers,
        "stop_to_sealed_ms": stops,
    }


async def poll(client: httpx.AsyncClient, until: float, every: float, out: list[float]) -> None:
    while time.perf_counter() < until:
        sent = time.perf_counter()
        response = await client.get("/v1/status")
        out.append((time.perf_counter() - sent) * 1e3)
        response.raise_for_status()
        await asyncio.sleep(max(0.0, every - (time.perf_counter() - sent)))


def bench_load(d: Daemon, clients: int, seconds: float, poll_ms: float) -> dict[str, Any]:
    d.call("PUT", "/v1/pipeline", content=DEMO, headers={"Content-Type": "application/yaml"})
    d.call("POST", "/v1/runs", json={})
    latencies: list[float] = []

    async def everyone() -> None:
        # The clients are made before the clock starts: each builds an SSL
        # context (20-40 ms of this process's CPU), and made in the loop one
        # by one they held back the answers to the first ones' first requests,
        # which counted that wait as the daemon's (up to 0.7 s; 19 of ~1,900
        # requests, the whole p99). Each client's first request still opens
        # its connection, all 20 at once.
        pool = [
            httpx.AsyncClient(base_url=d.url, headers=d.headers, timeout=30) for _ in range(clients)
        ]
        until = time.perf_counter() + seconds
        try:
            await asyncio.gather(*(poll(c, until, poll_ms / 1e3, latencies) for c in pool))
        finally:
            for c in pool:
                await c.aclose()

    loop_before = loop_cpu_ns(d.proc.pid)
    asyncio.run(everyone())
    loop_ns = loop_cpu_ns(d.proc.pid) - loop_before
    run = d.call("POST", "/v1/runs/current/stop")
    ordered = sorted(latencies)
    return {
        # The event loop's (the daemon's main thread) CPU per request: what each
        # of the 20 polls arriving together costs the ones after it.
        "loop_cpu_us": loop_ns / len(ordered) / 1e3,
        "requests": len(ordered),
        "status_p50_ms": ordered[len(ordered) // 2],
        "status_p99_ms": ordered[int(len(ordered) * 0.99)],
        "status_max_ms": ordered[-1],
        "frames": run["frames"],
        "dropped": run["dropped"],
    }


def loop_cpu_ns(pid: int) -> int:
    """CPU time of the daemon's main thread (its event loop), in ns (Linux schedstat)."""
    with open(f"/proc/{pid}/task/{pid}/schedstat") as f:
        return int(f.read().split()[0])


def bench_idle(d: Daemon, seconds: float = 10.0) -> dict[str, float]:
    d.call("PUT", "/v1/pipeline", content=DEMO, headers={"Content-Type": "application/yaml"})
    daemon = psutil.Process(d.proc.pid)
    time.sleep(2.0)  # settle after the load
    family = [daemon, *daemon.children(recursive=True)]
    before = {p.pid: p.cpu_times() for p in family}
    time.sleep(seconds)
    cpu = 0.0
    for p in family:
        try:
            now = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        cpu += (now.user + now.system) - (before[p.pid].user + before[p.pid].system)
    workers_rss = sum(p.memory_info().rss for p in family[1:])
    return {
        "daemon_rss_mb": daemon.memory_info().rss / 2**20,
        "workers": len(family) - 1,
        "workers_rss_mb": workers_rss / 2**20,
        "cpu_percent_of_a_core": 100 * cpu / seconds,
    }


def bench_keepalive(d: Daemon, requests: int = 1000) -> dict[str, float]:
    """Latency on one keep-alive connection: a GET and a POST with a body, alternately."""
    latencies = []
    daemon = psutil.Process(d.proc.pid)
    with httpx.Client(base_url=d.url, headers=d.headers, timeout=30) as client:
        client.get("/v1/status")
        before = daemon.cpu_times()
        for i in range(requests):
            sent = time.perf_counter()
            if i % 2:
                client.post("/v1/runs/current/stop", json={})  # 409: nothing runs
            else:
                client.get("/v1/status").raise_for_status()
            latencies.append((time.perf_counter() - sent) * 1e3)
        after = daemon.cpu_times()
    ordered = sorted(latencies)
    cpu = (after.user + after.system) - (before.user + before.system)
    return {
        # What a request costs the daemon: steadier than latency on a busy machine.
        "cpu_us_per_request": cpu / requests * 1e6,
        "p50_ms": ordered[len(ordered) // 2],
        "p99_ms": ordered[int(len(ordered) * 0.99)],
        "max_ms": ordered[-1],
    }


SMALL = DEMO.replace("shape: [512, 512]", "shape: [128, 128]")


def bench_disk(directory: Path) -> dict[str, float] | None:
    """Seconds from the disk warning to the disk full, on a 64 MB tmpfs."""
    data = directory / "disk"
    data.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(data)],
        capture_output=True,
        check=False,
    )
    if mounted.returncode != 0:
        return None
    try:
        (directory / "d2").mkdir()
        d = Daemon(directory / "d2", data_dir=str(data), disk_warn_minutes=10)
        try:
            d.call(
                "PUT", "/v1/pipeline", content=SMALL, headers={"Content-Type": "application/yaml"}
            )
            warned = full = None
            started = time.perf_counter()
            with (
                httpx.Client(base_url=d.url, headers=d.headers, timeout=None) as events,
                events.stream("GET", "/v1/events") as stream,
            ):
                d.call("POST", "/v1/runs", json={})
                for line in stream.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    event = json.loads(line.removeprefix("data: "))
                    if event["type"] == "disk" and warned is None:
                        warned = time.perf_counter() - started
                    if event["type"] == "run" and event["run"]["state"] == "failed":
                        full = time.perf_counter() - started
                        failure = event["run"]["failure"]
                        break
            return {
                "warned_s": warned or -1.0,
                "full_s": full or -1.0,
                "ahead_s": (full or 0) - (warned or 0),
                "no_space_named": float("No space left on device" in failure),
            }
        finally:
            d.stop()
    finally:
        subprocess.run(["umount", "-l", str(data)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--poll-ms", type=float, default=100.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", default=str(ROOT / "bench-data"))
    args = parser.parse_args()
    Path(args.dir).mkdir(exist_ok=True)
    print(f"load average at the start: {os.getloadavg()[0]:.2f} (1 min)")
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="service-") as directory:
        d = Daemon(Path(directory))
        try:
            idle = bench_idle(d)
            print(
                f"idle daemon, pipeline loaded: {idle['daemon_rss_mb']:.0f} MB resident "
                f"(target < 150), {idle['workers']} spare workers {idle['workers_rss_mb']:.0f} MB; "
                f"CPU {idle['cpu_percent_of_a_core']:.2f}% of a core (target < 1%)"
            )
            keep = bench_keepalive(d)
            print(
                f"one keep-alive connection, idle: p50 {keep['p50_ms']:.2f} ms, p99 "
                f"{keep['p99_ms']:.2f} ms (target < 5), max {keep['max_ms']:.1f} ms; "
                f"daemon CPU {keep['cpu_us_per_request']:.0f} us a request"
            )
            times = bench_start_stop(d, args.runs)
            for name, values in times.items():
                print(
                    f"{name}: median {statistics.median(values):.0f} ms "
                    f"(min {min(values):.0f}, max {max(values):.0f}, {len(values)} runs)"
                )
            load = bench_load(d, args.clients, args.seconds, args.poll_ms)
            print(
                f"{args.clients} clients polling /v1/status every {args.poll_ms:.0f} ms for "
                f"{args.seconds:.0f} s (each on its own keep-alive connection) during a 200 fps "
                f"512x512 run: {load['requests']} requests, "
                f"p50 {load['status_p50_ms']:.1f} ms, p99 {load['status_p99_ms']:.1f} ms "
                f"(target < 50), max {load['status_max_ms']:.1f} ms; frames {load['frames']}, "
                f"dropped {load['dropped']} (target 0); the daemon's event loop: "
                f"{load['loop_cpu_us']:.0f} us of CPU a request"
            )
        finally:
            code = d.stop()
            print(f"daemon exit status after SIGTERM: {code}")
        print(f"load average after the daemon's runs: {os.getloadavg()[0]:.2f} (1 min)")
        disk = bench_disk(Path(directory))
        if disk is None:
            print("disk warning: skipped (mounting a tmpfs needs root)")
        else:
            print(
                f"disk warning, 64 MB tmpfs at 6.5 MB/s: warned {disk['warned_s']:.1f} s after "
                f"the start, disk full at {disk['full_s']:.1f} s: {disk['ahead_s']:.1f} s ahead; "
                f"the run's failure names 'No space left on device': "
                f"{bool(disk['no_space_named'])}"
            )


if __name__ == "__main__":
    main()
