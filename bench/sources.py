#!/usr/bin/env python3
"""Sources: GenICamCamera against Aravis's own tool, file sources against plain loops.

- GenICam: Aravis's GigE Vision simulator on loopback at 512x512 Mono8 and
  ``--rate`` fps. ``arv-camera-test-0.8`` (Aravis's own acquisition loop, C)
  for ``--seconds``: frames/s and CPU per frame. Then rigd's pipeline
  (GenICamCamera -> HDF5Recorder) on the same camera for the same time:
  frames/s, CPU per frame of the camera actor's process, drops (ledger and
  ``frame_info``), and the time from the driver's buffer (Aravis's system
  timestamp, when the buffer completed) to the frame in the ring (the slot's
  host timestamp), p50 and p99.
- Video (PyAV) and TIFF (tifffile) flat out: rigd's source into a ring (no
  reader) against a plain loop over the same library producing the same
  arrays (``frame.reformat`` + ``to_ndarray``; for TIFF the faster of
  ``page.asarray(out=)`` and ``tifffile.memmap`` + copy, into one buffer).
  rigd's rate is the source's own (first frame committed to the last).

    .venv/bin/python bench/sources.py [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
import textwrap
import time
from fractions import Fraction
from pathlib import Path

import h5py
import numpy as np
import psutil

import rigd
from rigd.pipeline import Pipeline, list_cameras, plan_pipeline

DEVICE = "Aravis-Fake-GV01"


def start_simulator() -> subprocess.Popen[bytes]:
    sim = subprocess.Popen(
        ["arv-fake-gv-camera-0.8", "-i", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while not any(c.id == DEVICE for c in list_cameras()):
        if time.monotonic() > deadline:
            sim.kill()
            raise RuntimeError("the simulator did not answer")
    return sim


def stop(sim: subprocess.Popen[bytes]) -> None:
    sim.kill()
    sim.wait()


def aravis_tool(rate: float, seconds: float, packet_size: int | None) -> dict[str, float]:
    sim = start_simulator()
    packets = ["-i", str(packet_size)] if packet_size else []
    try:
        proc = subprocess.Popen(
            [
                "stdbuf",
                "-oL",
                "arv-camera-test-0.8",
                "-n",
                DEVICE,
                "-w",
                "512",
                "-h",
                "512",
                "-f",
                str(rate),
                "--no-packet-socket",
                "-a",
                *packets,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ps = psutil.Process(proc.pid)
        time.sleep(seconds + 1.5)
        cpu = ps.cpu_times()
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    finally:
        stop(sim)
    rates = [float(m) for m in re.findall(r"^\s*(\d+) frames?/s", out, re.M)]
    errors = sum(int(m) for m in re.findall(r"(\d+) errors?", out))
    steady = rates[1:] or rates  # the first second includes the start
    fps = float(np.mean(steady)) if steady else 0.0
    return {
        "fps": fps,
        "cpu_us_per_frame": (cpu.user + cpu.system) / max(sum(rates), 1) * 1e6,
        "errors": errors,
    }


def rigd_camera(
    rate: float,
    seconds: float,
    directory: Path,
    packet_size: int | None,
    socket_buffer: int | None,
) -> dict[str, float]:
    n = int(rate * seconds)
    tuning = f", packet_size: {packet_size}" if packet_size else ""
    tuning += f", socket_buffer_bytes: {socket_buffer}" if socket_buffer else ""
    path = directory / "genicam.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: bench
            actors:
              - name: camera
                class: rigd.pipeline.GenICamCamera
                options: {{device_id: {DEVICE}, pixel_format: Mono8, width: 512, height: 512,
                           frame_rate: {rate}, n_frames: {n}, n_buffers: 32{tuning}}}
            record: [camera.frames, camera.frame_info]
            recording: {{directory: "{directory / "data"}", slots: 64}}
            """
        )
    )
    sim = start_simulator()
    try:
        pipeline = Pipeline(plan_pipeline(path))
        pipeline.start()
        pid = pipeline.status().actors["camera"]["pid"]
        ps = psutil.Process(pid)
        before = ps.cpu_times()
        t0 = time.monotonic()
        pipeline.wait(seconds * 3 + 30)
        elapsed = time.monotonic() - t0
        after = ps.cpu_times()
        report = pipeline.stop()
    finally:
        stop(sim)
        rigd.shutdown()
    with h5py.File(report.files[0], "r") as f:
        ts = f["camera/timestamp_ns"][:].astype(np.int64)
        info = f["camera_frame_info/frames"][:]
        ledger = int(f["camera/dropped"]["count"].sum()) if len(f["camera/dropped"]) else 0
    delivered = info[info[:, 3] == 0]
    latency_us = (ts - delivered[: len(ts), 2].astype(np.int64)) / 1e3
    frames = report.frames["camera"]
    cpu = (after.user + after.system) - (before.user + before.system)
    return {
        "fps": frames / elapsed,
        "cpu_us_per_frame": cpu / max(frames, 1) * 1e6,
        "frames": frames,
        "ledger_drops": ledger,
        "driver_drops": int((info[:, 3] != 0).sum()),
        "latency_p50_us": float(np.percentile(latency_us, 50)),
        "latency_p99_us": float(np.percentile(latency_us, 99)),
    }


def flat_out(yaml_text: str, directory: Path, actor: str) -> float:
    path = directory / f"{actor}.yaml"
    path.write_text(textwrap.dedent(yaml_text))
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.load()
    t0 = time.perf_counter()
    pipeline.run()
    pipeline.wait(300)
    elapsed = time.perf_counter() - t0
    status = rigd.get(pipeline.handle(actor).status.remote(), timeout=30)
    pipeline.stop()
    rigd.shutdown()
    # The source's own clock, first frame committed to the last: the steady
    # rate, without the run's start and the monitor's 0.2 s end detection
    # (which the wall time would charge to a 0.3 s replay).
    frames = float(status["frames_played"])
    if status.get("play_s"):
        return (frames - 1) / float(status["play_s"])
    return frames / elapsed


def video_bench(directory: Path, frames: int) -> tuple[float, float]:
    import av

    video = directory / "bench.mkv"
    rng = np.random.default_rng(0)
    with av.open(str(video), "w") as container:
        stream = container.add_stream("ffv1", rate=100)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "gray"
        stream.time_base = Fraction(1, 100)
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(
                rng.integers(0, 256, (480, 640), dtype=np.uint8), "gray"
            )
            frame.pts = k
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    t0 = time.perf_counter()
    n = 0
    with av.open(str(video)) as container:
        s = container.streams.video[0]
        s.thread_type = "AUTO"
        for frame in container.decode(s):
            frame.reformat(format="gray").to_ndarray()
            n += 1
    plain = n / (time.perf_counter() - t0)
    ours = flat_out(
        f"""
        name: video
        actors:
          - name: video
            class: rigd.pipeline.VideoSource
            options: {{path: "{video}", rate: max}}
        """,
        directory,
        "video",
    )
    return ours, plain


def tiff_bench(directory: Path, frames: int) -> tuple[float, float]:
    import tifffile

    stack = directory / "bench.tif"
    data = np.random.default_rng(1).integers(0, 4096, (frames, 512, 512), dtype=np.uint16)
    tifffile.imwrite(stack, data)
    # The peer: the fastest per-frame loop tifffile offers for this file,
    # each frame into one reused buffer (what a consumer does): pages
    # decoded with ``out=``, or the stack memory-mapped and copied (the
    # faster for an uncompressed contiguous stack). Best of the two, as ours
    # uses whichever the file allows.
    buffer = np.empty((512, 512), np.uint16)
    t0 = time.perf_counter()
    with tifffile.TiffFile(stack) as tif:
        for page in tif.series[0].pages:
            page.asarray(out=buffer)  # type: ignore[union-attr]
    decoded = frames / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    mapped = tifffile.memmap(stack, mode="r")
    for k in range(frames):
        np.copyto(buffer, mapped[k])
    del mapped
    copied = frames / (time.perf_counter() - t0)
    print(
        f"  plain tifffile loops: page.asarray(out=) {decoded:.0f}/s, memmap + copy {copied:.0f}/s"
    )
    plain = max(decoded, copied)
    ours = flat_out(
        f"""
        name: tiff
        actors:
          - name: stack
            class: rigd.pipeline.TiffStack
            options: {{path: "{stack}"}}
        """,
        directory,
        "stack",
    )
    return ours, plain


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--frames", type=int, default=2000, help="video/TIFF frames")
    parser.add_argument(
        "--packet-size", type=int, default=None, help="GevSCPSPacketSize, both sides"
    )
    parser.add_argument(
        "--socket-buffer", type=int, default=None, help="rigd's socket_buffer_bytes"
    )
    parser.add_argument("--only", choices=("camera", "files"), default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        if args.only != "files":
            camera(args, directory)
        if args.only != "camera":
            files(args, directory)


def camera(args: argparse.Namespace, directory: Path) -> None:
    tool = aravis_tool(args.rate, args.seconds, args.packet_size)
    print(
        f"arv-camera-test-0.8  512x512 @ {args.rate:g}: {tool['fps']:.1f} frames/s, "
        f"{tool['cpu_us_per_frame']:.0f} us CPU/frame, {tool['errors']} errors"
    )
    ours = rigd_camera(args.rate, args.seconds, directory, args.packet_size, args.socket_buffer)
    print(
        f"GenICamCamera        512x512 @ {args.rate:g}: {ours['fps']:.1f} frames/s, "
        f"{ours['cpu_us_per_frame']:.0f} us CPU/frame (camera actor), "
        f"{ours['frames']} recorded, {ours['ledger_drops']} in the ledger, "
        f"{ours['driver_drops']} incomplete buffers; driver buffer -> ring "
        f"p50 {ours['latency_p50_us']:.0f} us, p99 {ours['latency_p99_us']:.0f} us"
    )
    print(
        f"  ratio: {ours['fps'] / tool['fps']:.2f} of the tool's frames/s, CPU per "
        f"frame {ours['cpu_us_per_frame'] / tool['cpu_us_per_frame']:.2f} of the tool's"
    )


def files(args: argparse.Namespace, directory: Path) -> None:
    v_ours, v_plain = video_bench(directory, args.frames // 2)
    print(
        f"VideoSource 640x480 FFV1 gray, flat out: {v_ours:.0f} frames/s; plain PyAV loop "
        f"{v_plain:.0f} frames/s ({100 * v_ours / v_plain:.0f}%)"
    )
    t_ours, t_plain = tiff_bench(directory, args.frames)
    print(
        f"TiffStack 512x512 uint16, flat out: {t_ours:.0f} frames/s; plain tifffile loop "
        f"{t_plain:.0f} frames/s ({100 * t_ours / t_plain:.0f}%)"
    )


if __name__ == "__main__":
    main()
