"""What any link over loopback tcp can carry here: 8 MiB frames, two ways of sending.

The bridge's target against Ray's object store at 2048x2048 (20x Ray per
frame, ``bench/cluster.py --ray``) asks for a frame period no link over
loopback tcp reaches on a 2-core machine: this measures the ceiling, with
no ZMQ and no rigd, in two processes (a sender and a receiver), each side's
CPU per frame included:

- ``sendall``: the frame from a buffer (the kernel copies it into the
  socket, the receiver's ``recv_into`` copies it out);
- ``sendfile``: the frame from a file in /dev/shm (a ring's slots are such a
  file), which spares the sender's copy where the kernel can (the pages are
  lent to the socket); the receiver still copies.

    flock /tmp/rigd-bench.lock .venv/bin/python bench/loopback_ceiling.py --ray-ms 28.8

``--ray-ms``: Ray's per-frame figure at 2048x2048 from ``bench/cluster.py
--ray`` (same machine, same hour): the period 20x Ray would need is printed
beside each way's.
"""

from __future__ import annotations

import argparse
import mmap
import multiprocessing as mp
import os
import socket
import time

FRAME = 2048 * 2048 * 2
SLOTS = 4


def _receive(listener: socket.socket, out: mp.Queue) -> None:  # type: ignore[type-arg]
    conn, _ = listener.accept()
    buf = memoryview(bytearray(FRAME))
    frames, start, cpu = 0, time.perf_counter(), time.process_time()
    while conn.recv_into(buf, FRAME, socket.MSG_WAITALL) == FRAME:
        frames += 1
    out.put((frames, time.perf_counter() - start, time.process_time() - cpu))


def measure(way: str, seconds: float) -> tuple[float, float, float]:
    """Frames/s, and the sender's and receiver's CPU per frame (s), over ``seconds``."""
    path = f"/dev/shm/rigd-loopback-{os.getpid()}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, FRAME * SLOTS)
        with mmap.mmap(fd, FRAME * SLOTS) as slots:
            slots[:] = os.urandom(FRAME * SLOTS)
            listener = socket.create_server(("127.0.0.1", 0))
            results: mp.Queue = mp.Queue()  # type: ignore[type-arg]
            receiver = mp.get_context("fork").Process(target=_receive, args=(listener, results))
            receiver.start()
            sender = socket.create_connection(listener.getsockname())
            view = memoryview(slots)
            start, cpu, sent = time.perf_counter(), time.process_time(), 0
            while time.perf_counter() - start < seconds:
                offset = (sent % SLOTS) * FRAME
                if way == "sendfile":
                    done = 0
                    while done < FRAME:
                        done += os.sendfile(sender.fileno(), fd, offset + done, FRAME - done)
                else:
                    sender.sendall(view[offset : offset + FRAME])
                sent += 1
            sender_cpu = time.process_time() - cpu
            sender.close()
            frames, wall, receiver_cpu = results.get(timeout=60)
            receiver.join(10)
            listener.close()
            view.release()
    finally:
        os.close(fd)
        os.unlink(path)
    return frames / wall, sender_cpu / sent, receiver_cpu / max(frames, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ray-ms", type=float, default=0.0, help="Ray's ms per 2048x2048 frame")
    args = parser.parse_args()
    print(f"8 MiB frames over loopback tcp, {args.seconds:g} s each, load {os.getloadavg()[0]:.1f}")
    if args.ray_ms:
        print(f"  20x Ray ({args.ray_ms:.1f} ms) needs {args.ray_ms / 20:.2f} ms a frame")
    for k in range(args.rounds):
        for way in ("sendall", "sendfile") if k % 2 == 0 else ("sendfile", "sendall"):
            rate, send_cpu, recv_cpu = measure(way, args.seconds)
            versus = f"  Ray/this {args.ray_ms / (1e3 / rate):5.1f}x" if args.ray_ms else ""
            print(
                f"  {way:8s}: {rate:6.1f} frames/s ({1e3 / rate:5.2f} ms a frame); CPU a frame:"
                f" sender {send_cpu * 1e3:4.2f} ms, receiver {recv_cpu * 1e3:4.2f} ms{versus}"
            )


if __name__ == "__main__":
    main()
