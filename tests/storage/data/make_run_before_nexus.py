"""Made run_before_nexus.h5.gz with rigd before issue 25 (commit 533530b).

A run file without NeXus, as files in the field have them, kept to show that
old files still open. Run from the repository root at that commit, then
``gzip -9 tests/storage/data/run_before_nexus.h5``. (The block size is made
small so the file is small; the layout is the old one.)
"""

import time

import numpy as np

import rigd.storage._hdf5 as old
from rigd.storage import RunWriter, StreamSpec

old._RAW_GROW_BYTES = 1  # type: ignore[attr-defined]
path = "tests/storage/data/run_before_nexus.h5"
streams = [
    StreamSpec("camera", (8, 8), np.uint16),
    StreamSpec("stats", (3,), np.float64, latency_trace=False),
]
t0 = time.time_ns()
with RunWriter(
    path, streams, run_id="old-run", pipeline="actors: []\n", metadata={"subject_id": "M1"}
) as w:
    for k in range(80):
        if k == 5:
            continue
        img = np.full((8, 8), 100 + k, np.uint16)
        w.write("camera", img, k, t0 + k * 10_000_000)
        w.write(
            "stats", np.array([img.mean(), img.min(), img.max()], float), k, t0 + k * 10_000_000
        )
