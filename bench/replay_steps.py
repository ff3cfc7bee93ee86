"""The framework's CPU per file of a replay on one thread, against the plain loop.

`rigd.pipeline.replay_file` of a 256x256 uint16 run file through the bench's
`REPROCESS_YAML` (`FilePlayback` -> `Processor` -> `HDF5Recorder`, stepped in
turn on one thread: `rigd.actors.run_on_one_thread`) against
`reprocess_peer.plain_task` (the same reads and writes in a plain loop), both
in this process, with the HDF5 read and write replaced by no-ops
(`StreamReader.read_into`, `RunWriter.write`): what is left is the
framework's own work. Prints, for rounds of 10 files each, alternating which
side goes first:

- CPU per file (`time.process_time`), rigd and the peer, the median and the
  least of the rounds;
- the stepping thread's CPU per file (`time.thread_time` around
  `OneThread._step_in_turn`): the per-frame work, 3 steps a frame.

`--work row` (the processor sums one row, about 1.4 us, where `mean` reads
the whole frame, about 23 us) leaves the stepping thread's figure to the
framework nearly alone.

    flock /tmp/rigd-bench.lock .venv/bin/python bench/replay_steps.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from reprocess_costs import _inputs  # noqa: E402
from reprocess_peer import plain_task  # noqa: E402

import rigd.storage._run_inspect as run_inspect  # noqa: E402
import rigd.storage._run_writer as run_writer  # noqa: E402
from cluster import REPROCESS_YAML  # noqa: E402 - the bench's pipeline
from rigd.actors._one_thread import OneThread  # noqa: E402
from rigd.config import load_pipeline  # noqa: E402
from rigd.pipeline._replay import replay_file  # noqa: E402

FILES_PER_ROUND = 10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6, help="rounds per side")
    parser.add_argument("--frames", type=int, default=300, help="frames per file")
    parser.add_argument("--work", choices=("mean", "row"), default="mean")
    args = parser.parse_args()
    step_ns: list[int] = []
    step_in_turn = OneThread._step_in_turn

    def timed(self: OneThread) -> None:
        start = time.thread_time_ns()
        try:
            step_in_turn(self)
        finally:
            step_ns.append(time.thread_time_ns() - start)

    OneThread._step_in_turn = timed  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text = REPROCESS_YAML.replace("work: mean", f"work: {args.work}")
        (root / "p.yaml").write_text(text)
        loaded = load_pipeline(root / "p.yaml")
        inputs = _inputs(root, 4, args.frames)

        def rigd_side(k: int) -> None:
            out = tempfile.mkdtemp(dir=root)
            result = replay_file(loaded, inputs[k % 4], out, True, f"r{k}")
            assert result["state"] == "done", result

        def peer_side(k: int) -> None:
            plain_task(inputs[k % 4], tempfile.mkdtemp(dir=root))

        for k in range(2):  # warm up both, with their IO
            rigd_side(k)
            peer_side(k)
        run_inspect.StreamReader.read_into = lambda self, index, out: None  # type: ignore[method-assign]
        run_writer.RunWriter.write = lambda self, *a, **k: None  # type: ignore[method-assign]
        cpu: dict[str, list[float]] = {"rigd": [], "peer": []}
        stepping: list[float] = []
        print(f"load {os.getloadavg()[0]:.1f}")
        for n in range(args.rounds):
            sides: list[tuple[str, Any]] = [("rigd", rigd_side), ("peer", peer_side)]
            for name, side in sides if n % 2 == 0 else sides[::-1]:
                step_ns.clear()
                start = time.process_time()
                for k in range(FILES_PER_ROUND):
                    side(k)
                cpu[name].append((time.process_time() - start) / FILES_PER_ROUND * 1e3)
                if name == "rigd":
                    stepping.append(statistics.median(step_ns) / 1e6)
        print(f"{args.frames} frames a file, work {args.work}, IO nulled, ms per file:")
        for name, values in cpu.items():
            print(
                f"  {name} CPU: median {statistics.median(values):.1f} least {min(values):.1f} "
                f"({' '.join(f'{v:.1f}' for v in values)})"
            )
        print(
            f"  rigd/peer {statistics.median(cpu['rigd']) / statistics.median(cpu['peer']):.2f}; "
            f"rigd's stepping thread: median {statistics.median(stepping):.2f} least "
            f"{min(stepping):.2f} ({' '.join(f'{v:.2f}' for v in stepping)})"
        )
        print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
