#!/usr/bin/env python3
"""Frames between machines: a bridge link against raw pyzmq and Ray's object store.

Figures, in one run, on loopback tcp:

- throughput of a bridge link (source -> BridgeSender ~tcp~> BridgeReceiver ->
  a ring, every actor its own process), counted where its frames arrive, at
  512x512 and 2048x2048 uint16, flat out, against raw pyzmq PUSH/PULL of the
  same bytes between two processes (the floor: no rings, no flow control),
  over the same window after the same warm-up; a plain TCP socket with no ZMQ
  at all (``sendall``/``recv_into``: what any link over loopback tcp can
  reach here); and the end-to-end rate of a pipeline whose source copies
  every frame and whose sink reads each;
- with ``--cpu``: each thread's CPU time and page faults per frame, both sides;
- the latency a bridge hop adds: acquisition-to-sink at 100 Hz (512x512),
  through the bridge and through a plain ring link (p50, p99);
- with ``--ray`` (``pip install 'rigd[cluster]'``): a frame passed between
  actors on the two nodes of a local ``ray.cluster_utils.Cluster`` through
  Ray's object store, per frame, against the bridge's, raw pyzmq's and the
  plain socket's per-frame time.

    .venv/bin/python bench/cluster.py [--seconds 5] [--ray] [--cpu] [--reprocess]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import zmq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # pipeline_actors, for this process and the actors
# ... and for the Ray workers of the local clusters (they inherit the environment).
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(HERE), os.environ.get("PYTHONPATH", "")) if p
)

import thread_cpu  # noqa: E402

import rigd  # noqa: E402
from rigd.pipeline import Pipeline, plan_pipeline  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


#: Seconds a throughput figure waits after the first frames before it counts (both sides).
WARM_UP_S = 1.0


def bridge_yaml(shape: int, fps: float | None, bridged: bool, link_only: bool = False) -> str:
    """A pipeline: source -> sink, or source -> sender ~tcp~> receiver -> sink.

    ``link_only``: the bridge link alone, as raw PUSH/PULL is measured: the
    source's slots hold the frame once and then only get its number (raw
    pyzmq sends one prepared array again and again), and the receiver's
    ring has no reader (raw PULL drops each frame it receives).
    """
    port = free_port()
    fps_text = fps if fps else "null"
    fill = "once" if link_only else "each"
    if bridged:
        middle = f"""
          - {{name: sender, class: rigd.pipeline.BridgeSender,
              options: {{address: "tcp://127.0.0.1:{port}"}}}}
          - {{name: receiver, class: rigd.pipeline.BridgeReceiver,
              options: {{address: "tcp://127.0.0.1:{port}", shape: [{shape}, {shape}],
                         dtype: uint16}}}}
        links:
          - {{link: source.frames -> sender.frames}}
        """
        if not link_only:
            middle += "  - {link: receiver.frames -> sink.result, slots: 8}\n"
    else:
        middle = """
        links:
          - {link: source.frames -> sink.result, slots: 8}
        """
    sink = "" if link_only else "  - {name: sink, class: pipeline_actors.Sink}\n"
    return (
        textwrap.dedent(
            f"""
            name: bridge{shape}
            actors:
              - {{name: source, class: pipeline_actors.Source,
                  options: {{shape: [{shape}, {shape}], fps: {fps_text}, fill: {fill}}}}}
            """
        )
        + sink
        + textwrap.dedent(middle)
    )


def run_pipeline(text: str, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(text)
        pipeline = Pipeline(plan_pipeline(path))
        pipeline.start()
        try:
            time.sleep(seconds)  # a benchmark's measuring window, not a wait for a condition
            results: dict[str, Any] = rigd.get(pipeline.handle("sink").results.remote())
        finally:
            pipeline.stop(timeout=10)
    return results


def bridge_link(text: str, seconds: float, cpu: bool) -> tuple[float, list[str]]:
    """Frames/s the receiver's ring gets over ``seconds`` after ``WARM_UP_S``, and
    (``cpu``) each thread's CPU time per frame over those seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(text)
        pipeline = Pipeline(plan_pipeline(path))
        pipeline.start()
        try:
            receiver = pipeline.handle("receiver")
            time.sleep(WARM_UP_S)  # a benchmark's warm-up, not a wait for a condition
            pids = {n: a["pid"] for n, a in pipeline.status().actors.items()}
            before = thread_cpu.sample(pids) if cpu else {}
            n0 = rigd.get(receiver.status.remote())["frames_received"]
            t0 = time.perf_counter()
            time.sleep(seconds)  # the measuring window
            n1 = rigd.get(receiver.status.remote())["frames_received"]
            t1 = time.perf_counter()
            after = thread_cpu.sample(pids) if cpu else {}
        finally:
            pipeline.stop(timeout=10)
    frames = n1 - n0
    return frames / (t1 - t0), thread_cpu.per_frame(before, after, frames) if cpu else []


def _pull(address: str, seconds: float, counting: Any, done: Any, queue: Any) -> None:
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PULL)
    sock.connect(address)
    sock.recv(copy=False)  # the first frame: the warm-up starts after it
    start = time.perf_counter()
    while time.perf_counter() - start < WARM_UP_S:
        sock.recv(copy=False)
    counting.set()
    frames = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        sock.recv(copy=False)
        frames += 1
    queue.put(frames / (time.perf_counter() - start))
    done.set()
    while sock.poll(500):  # until the sender stops
        sock.recv(copy=False)
    sock.close(linger=0)
    ctx.term()


def raw_pushpull(shape: int, seconds: float, cpu: bool) -> tuple[float, list[str]]:
    """Frames/s of raw pyzmq PUSH -> PULL (zero-copy send of one prepared array)
    between two processes, counted by the PULL over ``seconds`` after ``WARM_UP_S``;
    and (``cpu``) each thread's CPU time per frame over those seconds."""
    frame = np.random.default_rng(0).integers(0, 4096, (shape, shape), dtype=np.uint16)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.PUSH)
    sock.setsockopt(zmq.SNDHWM, 8)
    address = f"tcp://127.0.0.1:{free_port()}"
    sock.bind(address)
    spawn = mp.get_context("spawn")
    counting, done, queue = spawn.Event(), spawn.Event(), spawn.Queue()
    proc = spawn.Process(target=_pull, args=(address, seconds, counting, done, queue))
    proc.start()
    stop = threading.Event()

    def push() -> None:  # flat out, on a thread: the main thread only takes the samples
        while not stop.is_set():
            sock.send(frame, copy=False)

    pusher = threading.Thread(target=push)
    pusher.start()
    pids = {"push": os.getpid(), "pull": proc.pid or 0}
    try:
        counting.wait(120)
        before = thread_cpu.sample(pids) if cpu else {}
        done.wait(120)
        after = thread_cpu.sample(pids) if cpu else {}
        rate: float = queue.get(timeout=30)
    finally:
        stop.set()
        pusher.join(30)
        proc.join(30)
        sock.close(linger=0)
        ctx.term()
    frames = round(rate * seconds)
    return rate, thread_cpu.per_frame(before, after, frames) if cpu else []


def _recv_socket(port: int, nbytes: int, seconds: float, queue: Any) -> None:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        buf = bytearray(nbytes)
        view = memoryview(buf)

        def one() -> None:
            got = 0
            while got < nbytes:
                n = sock.recv_into(view[got:], nbytes - got, socket.MSG_WAITALL)
                if not n:
                    raise EOFError
                got += n

        start = time.perf_counter()
        while time.perf_counter() - start < WARM_UP_S:
            one()
        frames, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            one()
            frames += 1
        queue.put(frames / (time.perf_counter() - start))


def raw_socket(shape: int, seconds: float) -> float:
    """Frames/s of a plain TCP socket over loopback, no ZMQ: ``sendall`` of one
    prepared array, ``recv_into`` (``MSG_WAITALL``) one reused buffer in another
    process. What any link over loopback tcp can reach here: the kernel copies
    each frame into the socket and out of it."""
    frame = np.random.default_rng(0).integers(0, 4096, (shape, shape), dtype=np.uint16)
    view = memoryview(frame).cast("B")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        spawn = mp.get_context("spawn")
        queue = spawn.Queue()
        proc = spawn.Process(
            target=_recv_socket, args=(listener.getsockname()[1], frame.nbytes, seconds, queue)
        )
        proc.start()
        conn, _ = listener.accept()
        with conn:
            with contextlib.suppress(OSError):
                while proc.is_alive() and queue.empty():
                    conn.sendall(view)
            rate: float = queue.get(timeout=30)
        proc.join(30)
    return rate


def ray_object_store(shape: int, frames: int) -> float:
    """Seconds per frame: a frame made on node A, read by an actor on node B (Ray)."""
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "resources": {"node_a": 1}},
    )
    cluster.add_node(num_cpus=1, resources={"node_b": 1})
    ray.init(address=cluster.address)
    try:

        @ray.remote(resources={"node_a": 0.01})
        class Producer:
            def __init__(self, shape: int) -> None:
                self.frame = np.random.default_rng(0).integers(
                    0, 4096, (shape, shape), dtype=np.uint16
                )

            def frame_ref(self) -> list[Any]:
                return [ray.put(self.frame)]

        @ray.remote(resources={"node_b": 0.01})
        class Consumer:
            def take(self, refs: list[Any]) -> int:
                return int(ray.get(refs[0])[1].sum())

        producer, consumer = Producer.remote(shape), Consumer.remote()
        ray.get(consumer.take.remote(ray.get(producer.frame_ref.remote())))  # warm up
        start = time.perf_counter()
        for _ in range(frames):
            ray.get(consumer.take.remote(ray.get(producer.frame_ref.remote())))
        return (time.perf_counter() - start) / frames
    finally:
        ray.shutdown()
        cluster.shutdown()


REPROCESS_YAML = """
name: rowsums
actors:
  - {name: camera, class: rigd.pipeline.SimulatedCamera, options: {shape: [256, 256]}}
  - {name: rowsum, class: pipeline_actors.Processor, options: {work: mean}}
  - {name: recorder, class: rigd.pipeline.HDF5Recorder}
links:
  - {link: camera.frames -> rowsum.frames}
  - {link: camera.frames -> recorder.camera}
  - {link: rowsum.result -> recorder.result}
"""


#: How many times ``reprocess_vs_ray`` ran in this process (its order alternates).
_reprocess_rounds = 0
#: Each run of the last ``reprocess_vs_ray`` call, in order: (side, seconds).
reprocess_runs: list[tuple[str, float]] = []


def _worker_pid() -> int:
    return os.getpid()


def _warm_up(address: str, cpus: int) -> None:
    """One throwaway job on a new cluster: a task per CPU, so the cluster's
    first job (the first driver's registration, the nodes settling after
    their start) falls on neither side of the comparison."""
    import ray

    ray.init(address=address)
    try:
        noop = ray.remote(num_cpus=1)(_worker_pid)
        ray.get([noop.remote() for _ in range(cpus)])
    finally:
        ray.shutdown()


def reprocess_vs_ray(
    files: int, frames: int, rigd_first: bool | None = None
) -> tuple[float, float]:
    """Seconds for `rigd reprocess --address` over ``files`` run files, and for a plain
    Ray task loop doing the same work, on a 2-node local cluster (each side's
    mean of two runs).

    Both sides are timed alike: connected to the cluster before the clock
    starts (``rigd.init``/``ray.init``), disconnected after it stops, so each
    figure is its loop over the files (the tasks' workers start inside it,
    on both sides). The cluster runs one throwaway job first (``_warm_up``),
    so neither side pays for being the cluster's first job. Each side then
    runs twice, in the order rigd, Ray, Ray, rigd (``rigd_first``; else
    Ray, rigd, rigd, Ray; ``None`` alternates the two from call to call),
    so a load that rises or falls steadily during the round (other work on
    the machine) weighs on both alike. The peer's task (``reprocess_peer``)
    imports numpy and ``rigd.storage`` only.
    """
    global _reprocess_rounds
    import ray
    from ray.cluster_utils import Cluster
    from reprocess_peer import plain_task

    from rigd.service._reprocess import reprocess
    from rigd.storage import RunWriter, StreamSpec

    if rigd_first is None:
        rigd_first = _reprocess_rounds % 2 == 0
    _reprocess_rounds += 1
    reprocess_runs.clear()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        inputs = []
        frame = np.random.default_rng(0).integers(0, 4096, (256, 256), dtype=np.uint16)
        for k in range(files):
            path = root / f"run{k}.h5"
            with RunWriter(
                path, [StreamSpec("camera", (256, 256), frame.dtype)], run_id=f"r{k}"
            ) as w:
                for i in range(frames):
                    w.write("camera", frame, i, 1_700_000_000_000_000_000 + i)
            inputs.append(str(path))
        (root / "p.yaml").write_text(REPROCESS_YAML)
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
        cluster.add_node(num_cpus=2)

        def rigd_side(run: int) -> float:
            rigd.init(address=f"ray:{cluster.address}")
            try:
                start = time.perf_counter()
                results = reprocess(
                    root / "p.yaml", inputs, root / f"out{run}", address=f"ray:{cluster.address}"
                )
                seconds = time.perf_counter() - start
            finally:
                rigd.shutdown()
            assert all(r.state == "done" for r in results), results
            reprocess_runs.append(("rigd", seconds))
            return seconds

        def ray_side(run: int) -> float:
            out = root / f"plain{run}"
            out.mkdir()
            ray.init(address=cluster.address)
            try:
                task = ray.remote(num_cpus=1)(plain_task)
                start = time.perf_counter()
                ray.get([task.remote(p, str(out)) for p in inputs])
                seconds = time.perf_counter() - start
            finally:
                ray.shutdown()
            reprocess_runs.append(("Ray", seconds))
            return seconds

        try:
            _warm_up(cluster.address, 4)
            if rigd_first:
                rigd_s, ray_s = rigd_side(0), ray_side(0)
                ray_s += ray_side(1)
                rigd_s += rigd_side(1)
            else:
                ray_s, rigd_s = ray_side(0), rigd_side(0)
                rigd_s += rigd_side(1)
                ray_s += ray_side(1)
        finally:
            cluster.shutdown()
    return rigd_s / 2, ray_s / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--ray", action="store_true", help="also Ray's object store, 2 nodes")
    parser.add_argument(
        "--reprocess", action="store_true", help="also rigd reprocess vs a Ray task loop"
    )
    parser.add_argument(
        "--reprocess-rounds", type=int, default=3, help="rounds of --reprocess (default 3)"
    )
    parser.add_argument(
        "--cpu", action="store_true", help="also each thread's CPU time per frame (psutil)"
    )
    args = parser.parse_args()
    rigd.init(num_cpus=8)
    per_frame: dict[int, float] = {}
    raw_per_frame: dict[int, float] = {}
    socket_per_frame: dict[int, float] = {}
    print(
        f"throughput, flat out, counted over {args.seconds:g} s after {WARM_UP_S:g} s"
        " (frames/s; MB/s)\n"
        "  bridge link: source (slots hold the frame once, then get its number) -> ring ->\n"
        "    BridgeSender ~tcp~> BridgeReceiver -> ring with no reader; counted as the\n"
        "    receiver's ring gets them (the target's figure)\n"
        "  raw: one prepared array, pyzmq PUSH (zero-copy) ~tcp~> PULL, which drops each;\n"
        "    counted by the PULL\n"
        "  pipeline: a source copying every frame -> bridge -> sink reading every frame,\n"
        "    end to end, counted by the sink (for reference, no target)"
    )
    for shape in (512, 2048):
        nbytes = shape * shape * 2
        rate, bridge_cpu = bridge_link(
            bridge_yaml(shape, None, bridged=True, link_only=True), args.seconds, args.cpu
        )
        raw, raw_cpu = raw_pushpull(shape, args.seconds, args.cpu)
        whole = run_pipeline(bridge_yaml(shape, None, bridged=True), args.seconds)["frames_per_s"]
        plain = raw_socket(shape, args.seconds)
        per_frame[shape], raw_per_frame[shape] = 1 / rate, 1 / raw
        socket_per_frame[shape] = 1 / plain
        print(
            f"  {shape}x{shape} uint16: bridge link {rate:7.1f} ({rate * nbytes / 1e6:5.0f})"
            f"  raw {raw:7.1f} ({raw * nbytes / 1e6:5.0f})  bridge/raw {rate / raw:4.2f}"
            f"   pipeline {whole:7.1f} ({whole / raw:4.2f} of raw)   load {os.getloadavg()[0]:.1f}"
        )
        print(
            f"    plain tcp socket, no ZMQ (what any loopback link can reach): {plain:7.1f}"
            f" ({plain * nbytes / 1e6:5.0f}); bridge/socket {rate / plain:4.2f}"
        )
        if args.cpu:
            print("    CPU per frame, bridge link:", *bridge_cpu, sep="\n")
            print("    CPU per frame, raw:", *raw_cpu, sep="\n")
    print("latency at 100 Hz, 512x512, acquisition to sink (us)")
    direct = run_pipeline(bridge_yaml(512, 100, bridged=False), args.seconds)
    hop = run_pipeline(bridge_yaml(512, 100, bridged=True), args.seconds)
    print(f"  ring link:   p50 {direct['p50_us']:7.0f}  p99 {direct['p99_us']:7.0f}")
    print(f"  bridge link: p50 {hop['p50_us']:7.0f}  p99 {hop['p99_us']:7.0f}")
    print(
        f"  added by the bridge hop: p50 {hop['p50_us'] - direct['p50_us']:7.0f}"
        f"  p99 {hop['p99_us'] - direct['p99_us']:7.0f}"
    )
    rigd.shutdown()
    if args.ray:
        print(
            "per frame between two nodes (ms): Ray's object store (put on node A, get on\n"
            "  node B, one after the other) vs the bridge link's, raw pyzmq's and the plain\n"
            "  socket's period above; Ray/socket is what any link over loopback tcp can reach"
        )
        for shape in (512, 2048):
            ray_s = ray_object_store(shape, 50 if shape == 512 else 20)
            print(
                f"  {shape}x{shape}: Ray {ray_s * 1e3:7.2f}  bridge {per_frame[shape] * 1e3:6.2f}"
                f"  raw {raw_per_frame[shape] * 1e3:6.2f}"
                f"  Ray/bridge {ray_s / per_frame[shape]:5.1f}x"
                f"  Ray/raw {ray_s / raw_per_frame[shape]:5.1f}x"
                f"  Ray/socket {ray_s / socket_per_frame[shape]:5.1f}x"
            )

    if args.reprocess:
        print(
            "reprocess of 8 files (300 frames 256x256 each), 2-node local cluster warmed by\n"
            "  one throwaway job; each side timed while connected (its loop over the files,\n"
            "  its workers' start included), the mean of two runs in the order ABBA\n"
            "  (A: rigd in odd rounds, Ray in even ones)"
        )
        every: dict[str, list[float]] = {"rigd": [], "Ray": []}
        for k in range(args.reprocess_rounds):
            rigd_s, ray_s = reprocess_vs_ray(8, 300)
            for side, seconds in reprocess_runs:
                every[side].append(seconds)
            first = "rigd" if k % 2 == 0 else "Ray"
            print(
                f"  round {k + 1} ({first} first and last): rigd reprocess {rigd_s:.2f} s"
                f"  plain Ray task loop {ray_s:.2f} s  rigd/Ray {rigd_s / ray_s:.2f}"
                f"  load {os.getloadavg()[0]:.1f}"
            )
            print("    runs:", ", ".join(f"{side} {s:.2f}" for side, s in reprocess_runs))
        if args.reprocess_rounds > 1:
            mid = {side: statistics.median(runs) for side, runs in every.items()}
            print(
                f"  all {len(every['rigd'])} runs of each: median rigd {mid['rigd']:.2f} s,"
                f" Ray {mid['Ray']:.2f} s, rigd/Ray {mid['rigd'] / mid['Ray']:.2f};"
                f" total rigd/Ray {sum(every['rigd']) / sum(every['Ray']):.2f}"
            )


if __name__ == "__main__":
    main()
