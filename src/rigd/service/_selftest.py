"""``rigd selftest [PIPELINE]`` and ``GET /v1/selftest``: can this PC hold the
rate a pipeline needs? Each check gives a figure, pass or fail, and the fix.

The checks, in well under a minute: the data directory's sustained write
rate (about 3 s of 8 MiB writes, synced) against the pipeline's data rate
(the recorded links' frame bytes times their source's ``fps``), free space
for the planned run length, /dev/shm against the rings, the CPUs' wake-up
latency (1 ms sleeps, for 1 s) and whether ``/dev/cpu_dma_latency`` can be
held, the GPUs (``rigd.gpu.inventory``; CUDA_VISIBLE_DEVICES; pinned-copy
bandwidth when CuPy is there), the GenICam cameras the pipeline names, the
clock's sync state (``timedatectl``, else ``chronyc``, else unknown); then a
run of the pipeline for a few seconds: its drops and reader latency.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rigd.pipeline import Plan
from rigd.service._disk import DiskWatch
from rigd.storage import FrameRing

__all__ = ["Check", "data_rate", "format_checks", "system_checks"]

_DISK_SECONDS = 3.0
_DISK_BLOCK = 8 << 20
_DISK_MAX = 2 << 30
_MARGIN = 1.5  # the disk must write this many times the data rate


@dataclass(frozen=True)
class Check:
    """One line of the table: ``ok`` None is 'unknown' (neither pass nor fail)."""

    name: str
    ok: bool | None
    figure: str
    fix: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def data_rate(plan: Plan | None) -> float | None:
    """Bytes per second the pipeline records: each recorded link's frame bytes
    times its writer's ``fps`` option; None if a recorded source has no fps
    (its rate is what the run measures)."""
    if plan is None:
        return None
    recorders = set(plan.recorders)
    actors = {a.name: a for a in plan.actors}
    rate = 0.0
    for ring in plan.rings:
        if not any(reader[0] in recorders for reader in ring.readers):
            continue
        fps = _fps(plan, actors, ring.writer)
        if fps is None:
            return None
        rate += fps * int(np.prod(ring.shape)) * np.dtype(ring.dtype).itemsize
    return rate


def _fps(plan: Plan, actors: dict[str, Any], name: str) -> float | None:
    """The frame rate at actor ``name``: its own ``fps``, else its source's."""
    seen = set()
    while name not in seen:
        seen.add(name)
        actor = actors.get(name)
        if actor is None:
            return None
        fps = actor.options.get("fps")
        if isinstance(fps, int | float) and not isinstance(fps, bool) and fps > 0:
            return float(fps)
        if not actor.upstream:
            return None
        name = actor.upstream[0]
    return None


def _mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def disk_check(directory: Path, rate: float | None) -> tuple[Check, float]:
    """Sustained write rate of ``directory``'s disk (synced), against ``rate``."""
    directory.mkdir(parents=True, exist_ok=True)
    block = np.random.default_rng(0).integers(0, 255, _DISK_BLOCK, dtype=np.uint8).tobytes()
    fd, name = tempfile.mkstemp(prefix=".rigd-selftest-", dir=directory)
    written = 0
    start = time.monotonic()
    try:
        while time.monotonic() - start < _DISK_SECONDS and written < _DISK_MAX:
            written += os.write(fd, block)
            if written % (64 << 20) == 0:
                os.fdatasync(fd)
        os.fdatasync(fd)
        speed = written / (time.monotonic() - start)
    except OSError as exc:
        return Check(
            "disk write",
            False,
            f"{directory}: {exc.strerror}",
            "free space there, or set data_dir to a writable disk",
        ), 0.0
    finally:
        os.close(fd)
        os.unlink(name)
    figure = f"{speed / 1e6:,.0f} MB/s sustained in {directory}"
    if rate is None:
        return Check(
            "disk write",
            None,
            figure + "; the pipeline's data rate is unknown (no "
            "fps on its source): see the run below",
        ), speed
    figure += f", pipeline records {rate / 1e6:,.1f} MB/s"
    ok = speed >= _MARGIN * rate
    fix = (
        ""
        if ok
        else (
            f"record to a faster disk (at least {_MARGIN * rate / 1e6:,.0f} MB/s: "
            "an NVMe SSD), compress (recording: compression), or record fewer frames"
        )
    )
    return Check("disk write", ok, figure, fix), speed


def planned_minutes(plan: Plan | None, minutes: float) -> float:
    """The run's length: ``minutes``, or less if every source ends by itself
    (``n_frames`` at ``fps``)."""
    ends = []
    for actor in plan.actors if plan else ():
        if actor.is_source:
            n, fps = actor.options.get("n_frames"), actor.options.get("fps")
            if not (isinstance(n, int) and isinstance(fps, int | float) and fps > 0):
                return minutes
            ends.append(n / fps / 60)
    return min([minutes, max(ends)]) if ends else minutes


def space_check(
    directory: Path, rate: float | None, minutes: float, plan: Plan | None = None
) -> Check:
    planned = DiskWatch.planned_bytes(plan) if plan is not None else None
    if planned is not None:
        # The rule ``rigd start`` applies (HTTP 507): the whole planned run must fit.
        free = DiskWatch(directory, 0.0).free_bytes()
        ok = free < 0 or planned <= free
        return Check(
            "free space",
            ok,
            f"{_mb(max(free, 0))} free, the planned run (n_frames) records {_mb(planned)}",
            ""
            if ok
            else f"free {_mb(planned - free)} in {directory}, or record fewer frames "
            "(n_frames); rigd start refuses this run (507)",
        )
    free = shutil.disk_usage(directory).free
    if rate is None or rate <= 0:
        return Check("free space", None, f"{_mb(free)} free in {directory}")
    minutes = planned_minutes(plan, minutes)
    need = rate * minutes * 60
    ok = free >= need
    figure = f"{_mb(free)} free, {minutes:.3g} min at {rate / 1e6:,.1f} MB/s needs {_mb(need)}"
    return Check(
        "free space",
        ok,
        figure,
        "" if ok else f"free {_mb(need - free)} in {directory}, or plan a shorter run (--minutes)",
    )


def shm_check(plan: Plan | None) -> Check:
    from rigd.storage import shm_free_bytes

    free = shm_free_bytes()
    if plan is None:
        return Check("/dev/shm", None, f"{_mb(free)} free (no pipeline to size the rings)")
    need = sum(FrameRing.bytes_needed(r.shape, r.dtype, r.slots) for r in plan.rings)
    ok = free >= need
    return Check(
        "/dev/shm",
        ok,
        f"{_mb(free)} free, the rings need {_mb(need)}",
        ""
        if ok
        else "enlarge /dev/shm (docker: --shm-size; else mount -o remount,size=...), or "
        "use fewer slots",
    )


def cpu_check(plan: Plan | None) -> Check:
    """Wake-up latency of 1 ms sleeps (p99 overshoot) against the fastest frame period."""
    late = []
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        t = time.perf_counter()
        time.sleep(0.001)
        late.append(time.perf_counter() - t - 0.001)
    p99 = float(np.percentile(late, 99)) * 1e6
    holdable = os.access("/dev/cpu_dma_latency", os.W_OK)
    fps = [
        a.options["fps"]
        for a in (plan.actors if plan else ())
        if isinstance(a.options.get("fps"), int | float) and a.options["fps"]
    ]
    figure = (
        f"p99 wake-up {p99:,.0f} us; /dev/cpu_dma_latency {'can' if holdable else 'cannot'} be held"
    )
    if not fps:
        return Check("CPU wake-up", p99 < 2000 or None, figure)
    period_us = 1e6 / max(fps)
    ok = p99 < period_us / 2
    fix = (
        ""
        if ok
        else (
            "hold the latency (realtime: {cpu_latency_us: 0}, needs write access "
            "to /dev/cpu_dma_latency), pin actors (cpus:), or use tuned's "
            "latency-performance profile"
        )
    )
    return Check("CPU wake-up", ok, f"{figure}; frame period {period_us:,.0f} us", fix)


def gpu_check(plan: Plan | None) -> Check:
    from rigd.gpu import inventory, pinned_copy_bandwidth

    try:
        gpus = inventory()
    except ValueError as exc:
        return Check("GPUs", False, str(exc), "fix RIGD_FAKE_GPUS")
    wanted = sum(float(a.config.num_gpus or 0) for a in (plan.actors if plan else ()))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    figure = ", ".join(f"{g.name} {g.uuid}" for g in gpus) or "none"
    if visible is not None:
        figure += f"; CUDA_VISIBLE_DEVICES={visible!r}"
    bandwidth = pinned_copy_bandwidth() if gpus and not gpus[0].simulated else None
    if bandwidth is not None:
        figure += f"; pinned host-to-device copy {bandwidth / 1e9:,.1f} GB/s"
    if wanted and not gpus:
        return Check(
            "GPUs",
            False,
            figure + f"; the pipeline asks for {wanted:g}",
            "install the NVIDIA driver and nvidia-ml-py (rigd[gpu]), or run the "
            "actors on the CPU (num_gpus: 0)",
        )
    return Check("GPUs", True if wanted else None, figure)


def camera_check(plan: Plan | None) -> Check:
    named = [
        str(a.options.get("camera_id") or a.options.get("device_id") or a.name)
        for a in (plan.actors if plan else ())
        if "GenICam" in a.config.class_path
    ]
    if not named:
        return Check("cameras", None, "the pipeline names no GenICam camera")
    from rigd.service._cameras import CamerasUnavailableError, camera_list

    try:
        seen = {c.get("id", "") for c in camera_list()}
    except CamerasUnavailableError as exc:
        return Check("cameras", False, str(exc), "install Aravis (rigd[genicam])")
    missing = [n for n in named if n not in seen]
    return Check(
        "cameras",
        not missing,
        f"named {named}, seen {sorted(seen)}",
        ""
        if not missing
        else f"connect or power {missing}; check the network "
        "interface's MTU and that the camera's subnet is this host's",
    )


def clock_check(run: Callable[..., Any] = subprocess.run) -> Check:
    if shutil.which("timedatectl"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = run(
                ["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
                ok = out.stdout.strip() == "yes"
                return Check(
                    "clock sync",
                    ok,
                    f"timedatectl: NTPSynchronized={out.stdout.strip()}",
                    "" if ok else "enable NTP (timedatectl set-ntp true) or chrony",
                )
    if shutil.which("chronyc"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = run(["chronyc", "-n", "tracking"], capture_output=True, text=True, timeout=5)
            if out.returncode == 0:
                ok = "Normal" in out.stdout
                line = next((x for x in out.stdout.splitlines() if "Leap" in x), "no leap status")
                return Check(
                    "clock sync",
                    ok,
                    f"chronyc: {line.strip()}",
                    "" if ok else "let chronyd reach its servers (chronyc sources)",
                )
    return Check(
        "clock sync",
        None,
        "unknown: neither timedatectl nor chronyc answers here",
        "install chrony or systemd-timesyncd to know",
    )


def system_checks(
    plan: Plan | None, directory: Path, minutes: float, *, busy: str | None = None
) -> list[Check]:
    """Every check but the run, for ``plan`` recording into ``directory``.

    ``busy``: why the disk-write and CPU measurements must not run now (a run
    under way on this rig, whose writes and wake-ups they would disturb and
    whose load would bend their figures); they are then reported unknown.
    """
    rate = data_rate(plan)
    if busy is None:
        disk, _ = disk_check(directory, rate)
        cpu = cpu_check(plan)
    else:
        disk = Check("disk write", None, f"not measured: {busy}", "call again once it has stopped")
        cpu = Check("CPU wake-up", None, f"not measured: {busy}", "call again once it has stopped")
    return [
        disk,
        space_check(directory, rate, minutes, plan),
        shm_check(plan),
        cpu,
        gpu_check(plan),
        camera_check(plan),
        clock_check(),
    ]


def run_check(
    status_links: list[dict[str, Any]],
    dropped: dict[str, int],
    frames: dict[str, int],
    seconds: float,
    failure: str | None,
) -> Check:
    """The run's line: frames, drops and the readers' wake-up latency."""
    latencies = [
        r["latency_p50_us"]
        for link in status_links
        for r in link["readers"]
        if r.get("latency_p50_us") is not None
    ]
    lost = sum(dropped.values())
    figure = f"{seconds:g} s: {sum(frames.values())} frames recorded, {lost} dropped" + (
        f", reader latency p50 up to {max(latencies):,.0f} us" if latencies else ""
    )
    if failure:
        return Check(
            "run",
            False,
            f"{figure}; failed: {failure}",
            "see the failure; rigd run PIPELINE shows the actors' errors",
        )
    ok = lost == 0
    return Check(
        "run",
        ok,
        figure,
        ""
        if ok
        else "a reader cannot keep up: see the lines above "
        "(disk, CPU), give actors CPUs of their own (cpus:), or add slots",
    )


def format_checks(checks: list[Check]) -> str:
    """The table ``rigd selftest`` prints."""
    width = max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        mark = {True: "PASS", False: "FAIL", None: "----"}[c.ok]
        lines.append(f"{mark}  {c.name:<{width}}  {c.figure}")
        if c.fix:
            lines.append(f"      {'':<{width}}  fix: {c.fix}")
    failed = sum(1 for c in checks if c.ok is False)
    lines.append(f"{'FAILED' if failed else 'PASSED'}: {failed} of {len(checks)} checks failed")
    return "\n".join(lines)
