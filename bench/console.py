#!/usr/bin/env python3
"""What a browser watching the console costs the pipeline, and how late it sees frames.

One real ``rigd serve``, one run of a 2048x2048 uint16 camera at 200 fps
(8 MiB frames, 1.7 GB/s) read losslessly by ``FrameStats``; in the same run,
``--rounds`` times ``--seconds`` with no page open, then ``--seconds`` with a
headless Chromium showing the console's live view of that stream at
``--fps`` (downscaled to 512x512 on the daemon, JPEG): alternated, so a
busy machine's drift falls on both alike. Per phase:
the camera's rate and the frames the lossless reader dropped (target: 0,
rate unchanged), and the daemon's CPU. The preview's latency, frame to
screen: the frame's timestamp (the camera's, CLOCK_REALTIME) to the moment
the page has drawn it (same host, same clock), p50/p99.

    .venv/bin/python bench/console.py [--seconds 10] [--rounds 3] [--fps 10]
        [--shot docs/console.png]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.service import browser  # noqa: E402
from tests.service.daemon import Daemon, serving  # noqa: E402

BIG = """\
name: big
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [2048, 2048], dtype: uint16, fps: 200, pattern: counter}
  - name: stats
    class: rigd.pipeline.FrameStats
links:
  - {link: camera.frames -> stats.frames, slots: 32}
"""


def sample(daemon: Daemon) -> tuple[float, int, int]:
    """(time, frames written, frames the lossless reader dropped)."""
    link = next(x for x in daemon.status()["links"] if x["ring"] == "camera.frames")
    dropped = sum(r["dropped"] for r in link["readers"] if r["input"] == "stats.frames")
    return time.monotonic(), link["written"], dropped


def phase(daemon: Daemon, seconds: float, name: str) -> dict[str, Any]:
    process = psutil.Process(daemon.pid)
    process.cpu_percent()
    t0, w0, d0 = sample(daemon)
    time.sleep(seconds)
    t1, w1, d1 = sample(daemon)
    result = {
        "phase": name,
        "rate_hz": (w1 - w0) / (t1 - t0),
        "dropped": d1 - d0,
        "daemon_cpu": process.cpu_percent(),
    }
    print(
        f"  {name:<16} {result['rate_hz']:7.1f} frames/s, {result['dropped']} dropped by the "
        f"lossless reader, daemon {result['daemon_cpu']:.0f}% of a core",
        flush=True,
    )
    return result


def screenshot(daemon: Daemon, path: str) -> None:
    """The console during the bundled demo, once its plots have ten samples (of its 10 s)."""
    daemon.client.put("/v1/pipeline", json={"file": "demo"})
    with browser.chromium() as page:
        page.set_window_size(1400, 1250)
        page.get(daemon.url + "/console")
        page.execute_script(f"sessionStorage.setItem('rigd-token', '{daemon.token}')")
        page.get(daemon.url + "/console")
        page.find_element("id", "run-id").send_keys("mouse12-session3")
        page.find_element("id", "metadata").send_keys('{"animal": "mouse12"}')
        page.find_element("id", "colormap").send_keys("viridis")
        time.sleep(1)
        page.find_element("id", "start").click()
        deadline = time.monotonic() + 60
        while page.execute_script("return window.rigdConsole.plotSamples") < 11:
            assert time.monotonic() < deadline, "no progress events"
            time.sleep(0.2)
        page.save_screenshot(path)
        print(f"screenshot: {path}")
    daemon.client.post("/v1/runs/current/stop")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="each phase's length")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of phases, alternated")
    parser.add_argument("--fps", type=float, default=10.0, help="the live view's rate")
    parser.add_argument("--shot", help="save a screenshot of the console during the demo here")
    args = parser.parse_args()
    if browser.missing():
        print(f"bench/console.py: {browser.missing()}", file=sys.stderr)
        return 2
    without: list[dict[str, Any]] = []
    watched: list[dict[str, Any]] = []
    latencies: list[float] = []
    drawn = 0
    with tempfile.TemporaryDirectory() as tmp, serving(Path(tmp)) as daemon:
        daemon.load(BIG)
        assert daemon.client.post("/v1/runs", json={"run_id": "bench"}).status_code == 201
        daemon.wait_for_frames(400, timeout=60)
        print(
            f"2048x2048 uint16 at 200 fps; {args.rounds} rounds of {args.seconds:g} s without, "
            f"then with, a browser showing the live view at {args.fps:g} fps:"
        )
        with browser.chromium() as page:
            page.get(daemon.url + "/console")
            page.execute_script(f"sessionStorage.setItem('rigd-token', '{daemon.token}')")
            for _ in range(args.rounds):
                page.get("about:blank")  # the browser stays, the page (and its view) goes
                without.append(phase(daemon, args.seconds, "no browser"))
                page.get(daemon.url + "/console")
                fps = page.find_element("id", "fps")
                fps.clear()
                fps.send_keys(str(int(args.fps)))
                page.execute_script(
                    "document.getElementById('fps').dispatchEvent(new Event('change'))"
                )
                deadline = time.monotonic() + 60
                while page.execute_script("return window.rigdConsole.framesDrawn") < 5:
                    assert time.monotonic() < deadline, "the console drew no frame"
                    time.sleep(0.1)
                page.execute_script(
                    "Object.assign(window.rigdConsole, {latencies: [], framesDrawn: 0})"
                )
                watched.append(phase(daemon, args.seconds, "browser watching"))
                state = page.execute_script("return window.rigdConsole")
                latencies += state["latencies"]
                drawn += state["framesDrawn"]
        daemon.client.post("/v1/runs/current/stop")
        if args.shot:
            screenshot(daemon, args.shot)
    latencies.sort()
    rate_without = statistics.mean(r["rate_hz"] for r in without)
    rate_watched = statistics.mean(r["rate_hz"] for r in watched)
    print(
        f"live view: {drawn / (args.seconds * args.rounds):.1f} frames/s drawn (asked "
        f"{args.fps:g}), latency frame->screen p50 {statistics.median(latencies):.0f} ms, "
        f"p99 {latencies[int(0.99 * (len(latencies) - 1))]:.0f} ms ({len(latencies)} frames)"
    )
    print(
        f"camera rate: {rate_without:.1f} frames/s without a browser, {rate_watched:.1f} with; "
        f"ratio {rate_watched / rate_without:.3f}; dropped by the lossless reader: "
        f"{sum(r['dropped'] for r in without)} without, {sum(r['dropped'] for r in watched)} with"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
