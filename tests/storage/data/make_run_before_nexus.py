# Made tests/storage/data/run_before_nexus.h5.gz with rigd before issue 25 (commit 533530b):
# a run file without NeXus, as the field has them. Kept to show old files still open.
import numpy as np, time
from rigd.storage import RunWriter, StreamSpec
p = "tests/storage/data/run_before_nexus.h5"  # then gzip -9
streams = [StreamSpec("camera", (32, 48), np.uint16), StreamSpec("stats", (3,), np.float64, latency_trace=False)]
t0 = time.time_ns()
import rigd.storage._hdf5 as m; m._RAW_GROW_BYTES = 1
with RunWriter(p, streams, run_id="old-run", pipeline="actors: []\n", metadata={"subject_id": "M1"}) as w:
    for k in range(12):
        if k == 5: continue
        img = np.full((32, 48), 100 + k, np.uint16)
        w.write("camera", img, k, t0 + k * 10_000_000)
        w.write("stats", np.array([img.mean(), img.min(), img.max()], float), k, t0 + k * 10_000_000)
