"""A recording process for the crash and disk-full tests.

Run as ``python -m tests.storage.recording_child MODE PATH``.
It writes a counter pattern (frame k filled with k) and reports on stdout
what it made durable, so the test can compare the file with it:

- ``flush-then-hang``: writes 40 frames per stream, flushes, prints
  ``flushed 40``, writes 25 more without flushing, prints ``unflushed``, and
  waits to be killed.
- ``stream [WRITE_BUFFERS [COMPRESSION]]``: writes frames forever, flushing
  every 0.1 s on its own (``WRITE_BUFFERS`` 0: the recorder's way, no I/O
  thread).
- ``fsize LIMIT``: caps the file size (RLIMIT_FSIZE), writes and flushes until
  a write fails, prints ``flushed N`` after each flush and ``error MESSAGE``
  at the end, and exits 3.
"""

from __future__ import annotations

import resource
import signal
import sys
import threading
import time

import numpy as np

from rigd.exceptions import RecordingError
from rigd.storage import RunWriter, StreamSpec

# A small-frame stream (8 frames per chunk) and a one-frame-per-chunk stream.
STREAMS = (
    StreamSpec("small", (128, 128), np.uint16),
    StreamSpec("large", (256, 512), np.uint16),
)


def frame(spec: StreamSpec, k: int) -> np.ndarray:
    return np.full(spec.shape, k % 65536, spec.dtype)


def write(writer: RunWriter, k: int) -> None:
    for spec in STREAMS:
        writer.write(spec.name, frame(spec, k), k, time.time_ns())


def main(mode: str, path: str, *args: str) -> int:
    if mode == "flush-then-hang":
        writer = RunWriter(path, STREAMS, run_id="crash", flush_interval=3600, fsync_interval=3600)
        for k in range(40):
            write(writer, k)
        writer.flush()
        print("flushed 40", flush=True)
        for k in range(40, 65):
            write(writer, k)
        print("unflushed", flush=True)
        threading.Event().wait()
    elif mode == "stream":
        buffers = int(args[0]) if args else 8
        compression = args[1] if len(args) > 1 else None
        streams = [StreamSpec(s.name, s.shape, s.dtype, compression=compression) for s in STREAMS]
        writer = RunWriter(
            path, streams, run_id="stream", flush_interval=0.1, write_buffers=buffers
        )
        print("started", flush=True)
        k = 0
        while True:
            write(writer, k)
            k += 1
            time.sleep(0.002)
    elif mode == "fsize":
        limit = int(args[0])
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG, not a signal
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        writer = RunWriter(path, STREAMS[1:], run_id="full", flush_interval=3600)
        k = 0
        try:
            while True:
                write_one = STREAMS[1]
                writer.write(write_one.name, frame(write_one, k), k, time.time_ns())
                k += 1
                writer.flush()
                print(f"flushed {k}", flush=True)
        except RecordingError as exc:
            try:
                writer.close()
            except RecordingError:
                pass
            print(f"error {exc}", flush=True)
            return 3
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
