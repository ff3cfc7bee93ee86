"""The data directory's disk: refuse a run that cannot fit, warn before it fills,
and name a full disk as the cause of a failed run."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Any

import numpy as np

from rigd.pipeline import Plan
from rigd.service._records import InsufficientStorageError
from rigd.service._snapshot import Snapshot
from rigd.storage import inspect_run, parse_dtype

__all__ = ["DiskWatch"]

# Less free than this after a failed run: the disk was full.
_DISK_FULL_BYTES = 1 << 20


def recorded_frame_bytes(plan: Plan) -> dict[str, int]:
    """Bytes per frame of each ring a recorder reads, by ring name."""
    recorders = set(plan.recorders)
    return {
        ring.name: int(np.prod(ring.shape)) * parse_dtype(ring.dtype).itemsize
        for ring in plan.rings
        if any(reader[0] in recorders for reader in ring.readers)
    }


def frame_bounds(plan: Plan) -> dict[str, int | None]:
    """Most frames each actor writes per output, by actor name: a source's
    ``n_frames`` option, else the sum of its upstream actors' bounds (None:
    unbounded, a source without ``n_frames`` upstream)."""
    bounds: dict[str, int | None] = {}
    by_name = {actor.name: actor for actor in plan.actors}

    def bound(name: str, seen: frozenset[str]) -> int | None:
        if name in bounds:
            return bounds[name]
        actor = by_name.get(name)
        result: int | None = None
        if actor is not None and name not in seen:
            n_frames = actor.options.get("n_frames")
            if isinstance(n_frames, int) and not isinstance(n_frames, bool):
                result = n_frames
            elif actor.upstream:
                ups = [bound(up, seen | {name}) for up in actor.upstream]
                result = None if any(u is None for u in ups) else sum(u or 0 for u in ups)
        bounds[name] = result
        return result

    for actor in plan.actors:
        bound(actor.name, frozenset())
    return bounds


class DiskWatch:
    """The free space of ``data_dir`` against what runs record there.

    Args:
        data_dir: the daemon's data directory.
        warn_minutes: warn when a run fills the disk within this many minutes.
    """

    def __init__(self, data_dir: Path, warn_minutes: float) -> None:
        self.data_dir = data_dir
        self.warn_minutes = warn_minutes

    def free_bytes(self) -> int:
        """Bytes free to this user in the data directory; -1 if it cannot be read."""
        try:
            info = os.statvfs(self.data_dir)
        except OSError:
            return -1
        return info.f_bavail * info.f_frsize

    @staticmethod
    def planned_bytes(plan: Plan) -> int | None:
        """Bytes the run records in all, if every recorded stream is bounded; None
        for a run of unknown length.

        A source is bounded by its ``n_frames`` option; an actor without one (a
        processing step such as FrameStats) by what its inputs bring: at most one
        output frame per input frame, so the sum of its upstream actors' bounds.
        A stream with an unbounded source upstream makes the run unbounded.
        """
        bounds = frame_bounds(plan)
        planned = 0
        for ring_name, size in recorded_frame_bytes(plan).items():
            n_frames = bounds.get(ring_name.split(".")[0])
            if n_frames is None:
                return None
            planned += n_frames * size
        return planned

    def check_space(self, plan: Plan) -> None:
        """Refuse a run whose planned length (sources with n_frames) cannot fit the disk.

        Raises:
            InsufficientStorageError: it cannot (HTTP 507).
        """
        planned = self.planned_bytes(plan)
        if planned is None:
            return  # a run of unknown length: the disk watch warns instead
        free = self.free_bytes()
        if free >= 0 and planned > free:
            raise InsufficientStorageError(
                f"the run would record {planned / 1e6:.1f} MB but {self.data_dir} has "
                f"{free / 1e6:.1f} MB free; free space there, or record fewer frames"
            )

    def sample(
        self, snapshot: Snapshot | None, plan: Plan | None, run_id: str | None
    ) -> dict[str, Any]:
        """Free space against the running run's data rate (``snapshot``: None when
        nothing runs): ``directory``, ``free_bytes``, and while recording
        ``rate_bytes_s``, ``minutes_left`` and, when it fills within
        ``warn_minutes``, ``warning``."""
        free = self.free_bytes()
        disk: dict[str, Any] = {"directory": str(self.data_dir), "free_bytes": free}
        if snapshot is not None and plan is not None and run_id is not None and free >= 0:
            frame_bytes = recorded_frame_bytes(plan)
            rate = sum(
                link["rate_hz"] * size
                for link in snapshot["links"]
                for name, size in frame_bytes.items()
                if str(link["ring"]).endswith(name)
            )
            disk["rate_bytes_s"] = round(rate, 1)
            if rate > 0:
                minutes = free / rate / 60
                disk["minutes_left"] = round(minutes, 2)
                planned = self.planned_bytes(plan)
                # A run of planned length that fits (checked at its start) is not warned of.
                if minutes < self.warn_minutes and (planned is None or planned > free):
                    disk["warning"] = (
                        f"{self.data_dir} fills in {minutes:.1f} min at {rate / 1e6:.1f} MB/s "
                        f"({free / 1e6:.1f} MB free); free space or stop run {run_id}"
                    )
        return disk

    def failure_cause(self, failure: str, files: list[str], plan: Plan | None) -> str:
        """A run failure, with the cause when the data directory's disk is full.

        The recorder's process reports only its exit; the daemon asks the disk
        itself: if it cannot allocate what the recorder writes at a time (up to 64
        frames of its largest stream, 256 MiB at most), the disk is full.
        """
        frame = max(recorded_frame_bytes(plan).values(), default=0) if plan else 0
        probe = self.data_dir / f".rigd-space-probe-{os.getpid()}"
        try:
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            full = exc.errno == errno.ENOSPC
        else:
            try:
                os.posix_fallocate(fd, 0, min(max(_DISK_FULL_BYTES, 64 * frame), 1 << 28))
                full = False
            except OSError as exc:
                full = exc.errno == errno.ENOSPC
            finally:
                os.close(fd)
                with contextlib.suppress(OSError):
                    probe.unlink()
        if not full:
            return failure
        kept = [kept_frames(path) for path in files]
        return (
            f"No space left on device: the data directory {self.data_dir} is full; "
            f"{'; '.join(kept) or 'no file was written'} ({failure})"
        )


def kept_frames(path: str) -> str:
    """What a run file kept, per stream: ``PATH keeps cam: frames 0..38 (39)``."""
    try:
        summary = inspect_run(path)
    except (OSError, ValueError) as exc:
        return f"{path} (unreadable: {exc})"
    streams = [
        f"{s.name}: frames {s.first_frame_id}..{s.last_frame_id} ({s.frames})"
        if s.frames
        else f"{s.name}: no frame"
        for s in summary.streams
    ]
    return f"{path} ({summary.run_state}) keeps {', '.join(streams) or 'no stream'}"
