"""improv's store path for one message, measured (run by bench/messages.py with improv's Python).

What an improv 0.2.2 actor does to pass an object: the producer puts it in
the store (``improv.store.PlasmaStoreInterface.put``: Apache Arrow plasma)
and sends the object id down an improv Link (``improv.link.Link``: a
``multiprocessing.Manager`` queue); the consumer takes the id from the Link
and gets the object from the store (``getID``). Producer and consumer are
two processes, as two improv actors are; plasma_store is improv's server.

Prints one JSON line: per case, messages/s flat out and latency (put to
got, p50/p99, us) paced. Setup: see BENCHMARKS.md ("Messages and records").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import warnings
from typing import Any

import numpy as np

warnings.simplefilter("ignore")  # pyarrow 11's plasma warns that it is deprecated


def payload(kind: str, size: int) -> dict[str, object] | np.ndarray:
    """The object sent, made once and reused (as ``bench/messages.py`` does): per
    message only its ``k``, first data byte and stamp change (``store.put``
    copies it into plasma)."""
    if kind == "records":
        return np.zeros(1, [("t", "<i8"), ("k", "<i8"), ("data", "u1", (size - 16,))])
    return {"t": 0, "k": 0, "data": np.zeros(size, np.uint8)}


def stamp(obj: object) -> int:
    if isinstance(obj, dict):
        return int(obj["t"])
    return int(obj["t"][0])  # type: ignore[index]


def produce(loc: str, q: object, kind: str, size: int, n: int, rate: float | None) -> None:
    warnings.simplefilter("ignore")
    from improv.store import PlasmaStoreInterface

    store = PlasmaStoreInterface("producer", loc)
    obj: Any = payload(kind, size)
    start = time.monotonic()
    for k in range(n):
        if rate:
            due = start + k / rate
            while time.monotonic() < due:
                time.sleep(max(0.0, due - time.monotonic() - 0.0005))
        if isinstance(obj, dict):
            obj["data"][0] = k % 256
        obj["k"] = k
        # Stamped last, just before the put: the latency is the link's (both sides alike).
        obj["t"] = time.monotonic_ns()
        oid = store.put(obj, f"msg{k}")
        q.put([oid])  # type: ignore[attr-defined]


def consume(loc: str, q: object, n: int, out: object) -> None:
    warnings.simplefilter("ignore")
    from improv.store import PlasmaStoreInterface

    store = PlasmaStoreInterface("consumer", loc)
    latencies = []
    first = None
    for _ in range(n):
        ids = q.get(timeout=30)  # type: ignore[attr-defined]
        obj = store.getID(ids[0])
        data = obj["data"]
        _ = data.reshape(-1)[-1]  # its last byte, as rigd's consumer reads it
        now = time.monotonic_ns()
        t = stamp(obj)
        first = first or t
        latencies.append((now - t) / 1e3)
        del obj, data
    out.put({"latencies_us": latencies, "span_s": (time.monotonic_ns() - first) / 1e9})  # type: ignore[attr-defined]


def run_case(loc: str, kind: str, size: int, n: int, rate: float | None) -> dict[str, object]:
    from improv.link import Link

    q = Link("q", "producer", "consumer")
    out = mp.Queue()
    consumer = mp.Process(target=consume, args=(loc, q, n, out))
    producer = mp.Process(target=produce, args=(loc, q, kind, size, n, rate))
    consumer.start()
    producer.start()
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
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", required=True, help="kind:size:n,... e.g. messages:1000:5000")
    parser.add_argument("--paced-n", type=int, default=500)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--store-size", type=int, default=2_000_000_000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="improv-messages-")
    loc = os.path.join(tmp, "plasma.sock")
    binary = os.path.join(os.path.dirname(sys.executable), "plasma_store")
    server = subprocess.Popen(
        [binary, "-s", loc, "-m", str(args.store_size)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(loc) and time.monotonic() < deadline:
            time.sleep(0.05)
        results = {}
        for case in args.cases.split(","):
            kind, size, n = case.split(":")
            flat = run_case(loc, kind, int(size), int(n), None)
            paced = run_case(loc, kind, int(size), args.paced_n, args.rate)
            results[f"{kind}:{size}"] = {
                "flat_per_s": flat["per_s"],
                "paced_p50_us": paced["p50_us"],
                "paced_p99_us": paced["p99_us"],
            }
            print(case, results[f"{kind}:{size}"], file=sys.stderr)
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
