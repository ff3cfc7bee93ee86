"""Records and messages links: rigd against improv's store path, in one run.

A producer process sends objects to a consumer process:

- rigd, records link: a ``FrameRing`` of one structured record per slot
  (``t``, ``k`` and ``data`` bytes), written with ``put`` (one copy);
- rigd, messages link: a message ring; each message is a dict
  ``{"t", "k", "data": ndarray}``, packed into the slot (plain data:
  MessagePack, the array's bytes out of band), read back with its array a
  view of the slot;
- improv 0.2.2, the same objects through improv's own path: the store
  (``PlasmaStoreInterface.put``, Apache Arrow plasma) and an improv Link (a
  ``multiprocessing.Manager`` queue) carrying the object id, then
  ``getID`` in the consumer (``bench/improv_messages.py``, run with
  improv's Python).

Figures per case (1 KB and 1 MB objects): messages/s flat out (lossless,
the consumer touches each object's last byte), and latency from just
before the put to the consumer holding the object, paced at ``--rate``
(p50 and p99, us). Both sides alike: the same pacing loop, the clock
``time.monotonic_ns``, numpy's percentiles; each producer makes its object
once and reuses it, stamping it last, just before the put (what is timed
is the link, not making the object). Ratios: rigd / improv for rate, improv / rigd for latency. With
``--low-latency``, rigd's readers are low-latency ones (a pipeline file's
``low_latency: true``: they wake when the writer announces a message, before
it is packed, and spin for its commit).

    .venv/bin/python bench/messages.py --improv-python /tmp/improv-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rigd.storage import FrameRing, MessageReader, MessageWriter, message_ring_shape

SIZES = (1000, 1_000_000)
FLAT_N = {1000: 20_000, 1_000_000: 1_000}


def record_dtype(size: int) -> np.dtype[Any]:
    return np.dtype([("t", "<i8"), ("k", "<i8"), ("data", "u1", (size - 16,))])


def produce(segment: str, kind: str, size: int, n: int, rate: float | None, go: Any) -> None:
    ring = FrameRing.attach(segment)
    if kind == "messages":
        writer: Any = MessageWriter(ring)
        message: dict[str, Any] = {"t": 0, "k": 0, "data": np.zeros(size, np.uint8)}
    else:
        writer = ring.writer()
        record = np.zeros(1, record_dtype(size))
    go.wait()
    start = time.monotonic()
    for k in range(n):
        if rate:
            due = start + k / rate
            while time.monotonic() < due:
                time.sleep(max(0.0, due - time.monotonic() - 0.0005))
        # The object made (reused: improv's side does the same), stamped last,
        # just before the put: the latency is the link's.
        if kind == "messages":
            message["data"][0] = k % 256
            message["k"] = k
            message["t"] = time.monotonic_ns()
            writer.put(message, frame_id=k)
        else:
            record["k"] = k
            record["t"] = time.monotonic_ns()
            writer.put(record, frame_id=k)
    writer.close()
    ring.close()


def consume(segment: str, kind: str, n: int, ready: Any, out: Any, low_latency: bool) -> None:
    ring = FrameRing.attach(segment)
    plain = ring.reader(low_latency=low_latency)
    reader: Any = MessageReader(plain) if kind == "messages" else plain
    ready.set()
    latencies = []
    first = 0
    for _ in range(n):
        with reader.read(timeout=30) as item:
            if kind == "messages":
                value = item.value
                _ = value["data"][-1]
            else:
                _ = item.array["data"][0, -1]
            # Held and touched: the clock stops here, before the release (improv's
            # side stops it before it lets go of the object too).
            now = time.monotonic_ns()
            t = value["t"] if kind == "messages" else int(item.array["t"][0])
        first = first or t
        latencies.append((now - t) / 1e3)
    out.put({"latencies_us": latencies, "span_s": (time.monotonic_ns() - first) / 1e9})
    reader.close()
    ring.close()


def run_case(
    kind: str, size: int, n: int, rate: float | None, low_latency: bool = False
) -> dict[str, float]:
    ctx = mp.get_context("spawn")
    if kind == "messages":
        shape: tuple[int, ...] = message_ring_shape(size + 4096)
        dtype: Any = "uint8"
    else:
        shape, dtype = (1,), record_dtype(size)
    with FrameRing.create(f"bench-{kind}-{size}", shape, dtype, slot_count=16, kind=kind) as ring:
        ready, go, out = ctx.Event(), ctx.Event(), ctx.Queue()
        consumer = ctx.Process(target=consume, args=(ring.name, kind, n, ready, out, low_latency))
        producer = ctx.Process(target=produce, args=(ring.name, kind, size, n, rate, go))
        consumer.start()
        producer.start()
        ready.wait(60)
        go.set()
        result = out.get(timeout=600)
        producer.join()
        consumer.join()
    lat = np.array(result["latencies_us"])
    return {
        "per_s": n / result["span_s"],
        "p50_us": float(np.percentile(lat, 50)),
        "p99_us": float(np.percentile(lat, 99)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--improv-python", default="/tmp/improv-venv/bin/python")
    parser.add_argument("--rate", type=float, default=200.0, help="paced rate (per s)")
    parser.add_argument("--paced-n", type=int, default=500)
    parser.add_argument("--skip-improv", action="store_true")
    parser.add_argument(
        "--low-latency",
        action="store_true",
        help="rigd's readers low-latency (the pipeline file's low_latency: true)",
    )
    args = parser.parse_args()

    ours: dict[str, dict[str, float]] = {}
    for kind in ("records", "messages"):
        for size in SIZES:
            flat = run_case(kind, size, FLAT_N[size], None)
            paced = run_case(kind, size, args.paced_n, args.rate, args.low_latency)
            ours[f"{kind}:{size}"] = {
                "flat_per_s": flat["per_s"],
                "paced_p50_us": paced["p50_us"],
                "paced_p99_us": paced["p99_us"],
            }
            print(f"rigd {kind} {size} B: {ours[f'{kind}:{size}']}", file=sys.stderr)

    improv: dict[str, dict[str, float]] = {}
    if not args.skip_improv:
        cases = ",".join(
            f"{kind}:{size}:{FLAT_N[size]}" for kind in ("records", "messages") for size in SIZES
        )
        peer = Path(__file__).with_name("improv_messages.py")
        done = subprocess.run(
            [
                args.improv_python,
                str(peer),
                "--cases",
                cases,
                "--rate",
                str(args.rate),
                "--paced-n",
                str(args.paced_n),
            ],
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
        if done.returncode != 0:
            print(f"improv's side failed:\n{done.stderr[-3000:]}", file=sys.stderr)
        else:
            improv = json.loads(done.stdout.strip().splitlines()[-1])

    print()
    print(
        "| link | size | rigd msgs/s | improv msgs/s | ratio | rigd p50 / p99 us | "
        "improv p50 / p99 us | p50 ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for key, mine in ours.items():
        kind, size = key.split(":")
        theirs = improv.get(key)
        label = f"{int(size) // 1000} KB" if int(size) < 1_000_000 else "1 MB"
        if theirs:
            rate_ratio = f"**{mine['flat_per_s'] / theirs['flat_per_s']:.1f}x**"
            p50_ratio = f"**{theirs['paced_p50_us'] / mine['paced_p50_us']:.1f}x**"
            their_rate = f"{theirs['flat_per_s']:,.0f}"
            their_lat = f"{theirs['paced_p50_us']:,.0f} / {theirs['paced_p99_us']:,.0f}"
        else:
            rate_ratio = p50_ratio = their_rate = their_lat = "-"
        print(
            f"| {kind} | {label} | {mine['flat_per_s']:,.0f} | {their_rate} | {rate_ratio} | "
            f"{mine['paced_p50_us']:,.0f} / {mine['paced_p99_us']:,.0f} | {their_lat} | "
            f"{p50_ratio} |"
        )


if __name__ == "__main__":
    main()
