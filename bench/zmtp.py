#!/usr/bin/env python3
"""The bridge receiver's own ZMQ reader against pyzmq's, on the same stream.

A libzmq ROUTER (pyzmq, zero-copy sends of one prepared array) sends
``[header, frame]`` messages flat out over loopback tcp to one DEALER, in
another process, which puts each frame into one buffer in shared memory
(as the receiver puts it into a ring slot):

- pyzmq: ``zmq.DEALER``, ``recv()`` then ``recv_into(buffer)`` (libzmq
  decodes the message into memory of its own; ``recv_into`` copies it out);
- rigd: ``rigd.pipeline._zmtp.ZmtpDealer``, ``recv()`` then
  ``recv_into(buffer)`` (the kernel copies the frame into the buffer).

Counted by the reader over ``--seconds`` after one second, alternating the
two readers ``--rounds`` times; prints frames/s, MB/s and rigd/pyzmq.

    .venv/bin/python bench/zmtp.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import threading
import time
from multiprocessing import shared_memory
from typing import Any

import numpy as np
import zmq

WARM_UP_S = 1.0


def _read(kind: str, address: str, nbytes: int, seconds: float, queue: Any) -> None:
    shm = shared_memory.SharedMemory(create=True, size=nbytes)
    try:
        queue.put(_measure(kind, address, shm, seconds))
    finally:
        shm.close()
        shm.unlink()


def _measure(kind: str, address: str, shm: shared_memory.SharedMemory, seconds: float) -> float:
    from rigd.pipeline._zmtp import ZmtpDealer

    buffer = np.ndarray((shm.size,), np.uint8, shm.buf)
    buffer[:] = 0  # its pages in, as a ring's are
    view = memoryview(buffer)
    if kind == "pyzmq":
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.connect(address)
        sock.send(b"hello")

        def one() -> None:
            sock.recv()
            sock.recv_into(view)
    else:
        dealer = ZmtpDealer(address)
        while not dealer.connect():
            time.sleep(0.01)  # the ROUTER is bound already: the first try connects
        dealer.send([b"hello"])

        def one() -> None:
            dealer.recv()
            dealer.recv_into(view)

    start = time.perf_counter()
    while time.perf_counter() - start < WARM_UP_S:
        one()
    frames = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        one()
        frames += 1
    result = frames / (time.perf_counter() - start)
    if kind == "pyzmq":
        sock.close(linger=0)
        context.term()
    else:
        dealer.close()
    view.release()
    return result


def rate(kind: str, shape: int, seconds: float) -> float:
    frame = np.random.default_rng(0).integers(0, 4096, (shape, shape), dtype=np.uint16)
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.SNDHWM, 16)
    router.setsockopt(zmq.SNDTIMEO, 100)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    spawn = mp.get_context("spawn")
    queue = spawn.Queue()
    reader = spawn.Process(
        target=_read, args=(kind, f"tcp://127.0.0.1:{port}", frame.nbytes, seconds, queue)
    )
    reader.start()
    peer = router.recv_multipart()[0]
    stop = threading.Event()

    def send() -> None:
        header = b"F" + bytes(16)
        while not stop.is_set():
            try:
                router.send_multipart([peer, header, frame], copy=False)
            except zmq.Again:
                continue

    sender = threading.Thread(target=send)
    sender.start()
    try:
        result: float = queue.get(timeout=seconds + 60)
    finally:
        stop.set()
        sender.join(30)
        reader.join(30)
        router.close(linger=0)
        context.term()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print("one ROUTER -> one DEALER over loopback tcp, each frame into one shared buffer")
    for shape in (512, 2048):
        mb = shape * shape * 2 / 1e6
        for k in range(args.rounds):
            ours, theirs = rate("rigd", shape, args.seconds), rate("pyzmq", shape, args.seconds)
            print(
                f"  {shape}x{shape} uint16, round {k + 1}: rigd {ours:8.1f} ({ours * mb:5.0f} MB/s)"
                f"  pyzmq {theirs:8.1f} ({theirs * mb:5.0f} MB/s)  rigd/pyzmq {ours / theirs:.2f}"
                f"  load {os.getloadavg()[0]:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
