"""Reading a recorded stream frame by frame: `StreamReader.read_into` against h5py.

`StreamReader.read_into` reads a raw frame (chunks of whole frames, no
filter: what `RunWriter` writes) with one `pread` at its chunk's offset, where
h5py's `Dataset.read_direct` (the library, what `read_into` did before)
builds a selection for every call. Both read every frame of the same file
into the same buffer, in rounds that alternate which goes first; printed:
microseconds of CPU per frame (`time.process_time`), the median and the
least of the rounds, and their ratio. A compressed stream (`--compression
lz4`) is read by HDF5 on both sides (the figure then shows the fallback
costs nothing).

    flock /tmp/rigd-bench.lock .venv/bin/python bench/stream_read.py [--size 256] [--frames 300]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

from rigd.storage import RunWriter, StreamReader, StreamSpec


def _recorded(path: Path, size: int, frames: int, compression: str | None) -> None:
    frame = np.random.default_rng(0).integers(0, 4096, (size, size), dtype=np.uint16)
    spec = StreamSpec("camera", (size, size), frame.dtype, compression=compression)
    with RunWriter(path, [spec], run_id="read") as writer:
        for i in range(frames):
            writer.write("camera", frame, i, 1_700_000_000_000_000_000 + i)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256, help="frames of SIZE x SIZE uint16")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--compression", default=None, help="a codec (lz4, zstd, ...)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "run.h5"
        _recorded(path, args.size, args.frames, args.compression)
        out = np.empty((args.size, args.size), np.uint16)
        with StreamReader(path, "camera") as reader, h5py.File(path, "r") as f:
            dataset = f["camera/frames"]

            def rigd() -> None:
                for i in range(args.frames):
                    reader.read_into(i, out)

            def h5py_read_direct() -> None:
                for i in range(args.frames):
                    dataset.read_direct(out, source_sel=np.s_[i])

            sides = {"StreamReader.read_into": rigd, "h5py read_direct": h5py_read_direct}
            seen: dict[str, list[float]] = {name: [] for name in sides}
            for read in sides.values():
                read()  # the file in the page cache, both sides warm
            for r in range(args.rounds):
                for name in list(sides) if r % 2 == 0 else list(sides)[::-1]:
                    start = time.process_time()
                    sides[name]()
                    seen[name].append((time.process_time() - start) / args.frames * 1e6)
    print(
        f"{args.frames} frames {args.size}x{args.size} uint16, "
        f"{args.compression or 'raw'}, us of CPU per frame (median / least of {args.rounds}):"
    )
    for name, values in seen.items():
        print(f"  {name:24s} {statistics.median(values):8.1f} / {min(values):8.1f}")
    a, b = (statistics.median(v) for v in seen.values())
    print(f"  h5py / read_into: {b / a:.2f}x")


if __name__ == "__main__":
    main()
