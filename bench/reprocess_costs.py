"""The fixed costs of `rigd reprocess --address`, against a plain Ray task loop's.

Two figures, each with the peer in the same run (`reprocess_peer.plain_task`,
the same work as a plain function):

- the job's CPU in a fresh process that imported Ray first, as a Ray worker
  has before it runs a task (a worker has no pydantic): its first file (the
  job's imports included) and its second, rigd's `replay_file` (imported
  from its own module and given the pipeline file loaded and pickled, as
  `rigd reprocess`'s driver sends them, with the modules its
  `check_replay` checked) against the plain task,
  alternating, N times each (the median and the least: CPU time on a loaded
  machine only grows);
- the driver's CPU to hand 8 files to a 1-node Ray cluster and collect the
  results (`reprocess(..., address=...)` against `ray.remote(plain_task)`),
  and how many functions the driver exported to Ray's GCS for them.

    flock /tmp/rigd-bench.lock .venv/bin/python bench/reprocess_costs.py
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from cluster import REPROCESS_YAML  # noqa: E402 - the bench's pipeline
from rigd.config import load_pipeline  # noqa: E402
from rigd.pipeline import check_replay  # noqa: E402
from rigd.storage import RunWriter, StreamSpec  # noqa: E402

#: One job in a fresh process: Ray imported first (a worker has it, not pydantic), then
#: the job's imports and two files, CPU time after the first and after both. rigd's
#: task arrives as a Ray worker gets it: its function imported from its module
#: (cloudpickle's reference), then its argument unpickled (the loaded pipeline file).
JOB = """
import pickle, sys, time
sys.path.insert(0, sys.argv[1])
import ray
t = time.process_time()
if sys.argv[2] == "rigd":
    from rigd.pipeline._replay import replay_file
    with open(sys.argv[3], "rb") as f:
        loaded = pickle.load(f)
    def job(k, path):
        result = replay_file(
            loaded, path, sys.argv[4], True, f"r{k}", checked_modules=sys.argv[7].split(",")
        )
        assert result["state"] == "done", result
else:
    from reprocess_peer import plain_task
    def job(k, path):
        plain_task(path, f"{sys.argv[4]}/{k}")
job(0, sys.argv[5])
first = time.process_time() - t
job(1, sys.argv[6])
print(first, time.process_time() - t - first)
"""


def _inputs(root: Path, count: int, frames: int) -> list[str]:
    frame = np.random.default_rng(0).integers(0, 4096, (256, 256), dtype=np.uint16)
    paths = []
    for k in range(count):
        path = root / f"run{k}.h5"
        with RunWriter(path, [StreamSpec("camera", (256, 256), frame.dtype)], run_id=f"r{k}") as w:
            for i in range(frames):
                w.write("camera", frame, i, 1_700_000_000_000_000_000 + i)
        paths.append(str(path))
    return paths


def job_cpu(root: Path, inputs: list[str], runs: int) -> None:
    # As rigd reprocess's driver hands them to its tasks (check_replay's modules).
    checked = ",".join(check_replay(load_pipeline(root / "p.yaml")))
    seen: dict[str, list[tuple[float, float]]] = {"rigd": [], "peer": []}
    for n in range(runs):
        for side in ("rigd", "peer") if n % 2 == 0 else ("peer", "rigd"):
            out = Path(tempfile.mkdtemp(dir=root))
            for k in (0, 1):
                (out / str(k)).mkdir()
            args = [str(BENCH), side, str(root / "p.pickle"), str(out), *inputs[:2], checked]
            done = subprocess.run(
                [sys.executable, "-c", JOB, *args], capture_output=True, text=True, check=True
            )
            first, second = (float(v) for v in done.stdout.split())
            seen[side].append((first, second))
    print(f"job CPU in a fresh process (ray imported first), {runs} runs each, ms:")
    for label, i in (("first file (imports included)", 0), ("second file", 1)):
        row = {s: [v[i] * 1e3 for v in seen[s]] for s in seen}
        med = {s: statistics.median(v) for s, v in row.items()}
        low = {s: min(v) for s, v in row.items()}
        print(
            f"  {label}: rigd median {med['rigd']:.0f} least {low['rigd']:.0f}, "
            f"peer median {med['peer']:.0f} least {low['peer']:.0f}, "
            f"rigd/peer {med['rigd'] / med['peer']:.2f} (least {low['rigd'] / low['peer']:.2f})"
        )


def driver_cpu(root: Path, inputs: list[str]) -> None:
    import ray
    from ray._private.ray_constants import KV_NAMESPACE_FUNCTION_TABLE
    from ray.cluster_utils import Cluster
    from ray.experimental.internal_kv import _internal_kv_list
    from reprocess_peer import plain_task

    import rigd
    from rigd.service._reprocess import reprocess

    def exports() -> int:
        job = ray.get_runtime_context().get_job_id().encode()
        prefix = b"RemoteFunction:" + job + b":"
        return len(_internal_kv_list(prefix, namespace=KV_NAMESPACE_FUNCTION_TABLE))

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    try:
        rigd.init(address=f"ray:{cluster.address}")
        try:
            cpu = []
            for _ in range(2):  # the first with the driver's own imports and validator
                out = tempfile.mkdtemp(dir=root)
                start = time.process_time()
                results = reprocess(root / "p.yaml", inputs, out, address="ray")
                cpu.append(time.process_time() - start)
                assert all(r.state == "done" for r in results), results
            rigd_first, rigd_cpu, rigd_exports = cpu[0], cpu[-1], exports()
        finally:
            rigd.shutdown()
        ray.init(address=cluster.address)
        try:
            task = ray.remote(num_cpus=1)(plain_task)
            cpu = []
            for _ in range(2):
                out = tempfile.mkdtemp(dir=root)
                start = time.process_time()
                ray.get([task.remote(path, out) for path in inputs])
                cpu.append(time.process_time() - start)
            peer_first, peer_cpu, peer_exports = cpu[0], cpu[-1], exports()
        finally:
            ray.shutdown()
    finally:
        cluster.shutdown()
    print(
        f"driver CPU for {len(inputs)} files, first call (the driver's imports, rigd's "
        f"pipeline validator built): rigd reprocess {rigd_first * 1e3:.0f} ms, plain Ray "
        f"loop {peer_first * 1e3:.0f} ms"
    )
    print(
        f"driver CPU for {len(inputs)} files (second call): rigd reprocess "
        f"{rigd_cpu * 1e3:.0f} ms, plain Ray loop {peer_cpu * 1e3:.0f} ms, "
        f"rigd/Ray {rigd_cpu / peer_cpu:.2f}; functions exported to the GCS over both "
        f"calls: rigd {rigd_exports}, Ray {peer_exports}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per side")
    parser.add_argument("--frames", type=int, default=300, help="frames per file")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(BENCH), os.environ.get("PYTHONPATH")) if p
    )  # the Ray workers import the bench's actors and the peer
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "p.yaml").write_text(REPROCESS_YAML)
        (root / "p.pickle").write_bytes(pickle.dumps(load_pipeline(root / "p.yaml")))
        inputs = _inputs(root, 8, args.frames)
        print(f"load {os.getloadavg()[0]:.1f}")
        job_cpu(root, inputs, args.runs)
        driver_cpu(root, inputs)
        print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
