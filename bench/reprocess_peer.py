"""The peer of ``rigd reprocess`` in ``bench/cluster.py``: the same work as a plain task.

A module of its own, importing numpy and ``rigd.storage`` only: a Ray worker
that runs ``plain_task`` imports what the task needs and nothing of the
bench (rigd's pipeline package, pyzmq), as a plain Ray script's would.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rigd.storage import RunWriter, StreamReader, StreamSpec


def plain_task(path: str, out: str) -> int:
    """The reprocess pipeline's work, as a plain task: read each frame, write it
    and its mean (``<f8``) to a new run file in ``out``; return the frames."""
    with StreamReader(path, "camera") as reader:
        specs = [
            StreamSpec("camera", reader.shape, reader.dtype),
            StreamSpec("result", (1,), np.dtype("<f8")),
        ]
        frame = np.empty(reader.shape, reader.dtype)
        with RunWriter(Path(out) / Path(path).name, specs, run_id="plain") as writer:
            for i in range(len(reader)):
                reader.read_into(i, frame)
                fid, stamp = int(reader.frame_ids[i]), int(reader.timestamps_ns[i])
                writer.write("camera", frame, fid, stamp)
                writer.write("result", np.array([frame.mean()]), fid, stamp)
    return len(reader)
