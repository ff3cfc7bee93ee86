"""HDF5 recording: read back bit for bit, live readers, crashes, full disks, the ledger."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import rigd
from rigd.exceptions import RecordingError
from rigd.storage import (
    DropReason,
    RunWriter,
    StreamSpec,
    inspect_run,
    recover_run,
    run_file_path,
)
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
RIGD = [sys.executable, "-m", "rigd"]
H5DUMP = shutil.which("h5dump")
needs_h5dump = pytest.mark.skipif(
    H5DUMP is None, reason="h5dump not installed (Debian: apt install hdf5-tools)"
)


def counter(shape: tuple[int, ...], dtype: Any, k: int) -> np.ndarray:
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    value = k % (int(info.max) + 1) if info else float(k)
    return np.full(shape, value, dtype)


def realistic(shape: tuple[int, int], k: int) -> np.ndarray:
    """A smooth pattern plus noise: compressible, but not trivially."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    rng = np.random.default_rng(k)
    image = 1000 + 400 * np.sin((xx + k) / 17.0) * np.cos(yy / 23.0) + rng.normal(0, 15, shape)
    return image.astype(np.uint16)


def child(mode: str, path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage.recording_child", mode, str(path), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, f"child exited early: {proc.wait()} {proc.stderr.read() if proc.stderr else ''}"
    return line


def swmr_read(path: Path, code: str) -> Any:
    """Run ``code`` in another process with ``f`` open in SWMR read mode; return its JSON."""
    script = textwrap.dedent(
        f"""
        import json, h5py, numpy as np
        f = h5py.File({str(path)!r}, "r", libver=("v110", "v110"), swmr=True)
        """
    ) + textwrap.dedent(code)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


# -- read back ----------------------------------------------------------------------


@pytest.mark.parametrize("compression", [None, "lz4", "zstd", "bitshuffle-lz4"])
def test_every_frame_reads_back_bit_for_bit(tmp_path: Path, compression: str | None) -> None:
    streams = [
        StreamSpec("camera", (300, 512), np.uint16, compression=compression),  # 1 per chunk
        StreamSpec("small", (24, 32), np.float32, compression=compression),  # many per chunk
    ]
    path = tmp_path / "run.h5"
    frames = {s.name: [] for s in streams}
    with RunWriter(path, streams, run_id="r1", pipeline="actors: []\n") as writer:
        for k in range(150):
            for s in streams:
                image = realistic(s.shape, k).astype(s.dtype)
                frames[s.name].append(image)
                writer.write(s.name, image, k, 1_000_000 * k)
            if k == 70:
                writer.flush()  # a partial small-frame chunk, completed later
    with h5py.File(path, "r") as f:
        assert f.attrs["run_state"] == "complete"
        for s in streams:
            group = f[s.name]
            assert group["frames"].shape == (150, *s.shape)
            assert group["frames"].dtype == s.dtype
            np.testing.assert_array_equal(group["frames"][:], np.stack(frames[s.name]))
            np.testing.assert_array_equal(group["frame_id"][:], np.arange(150))
            np.testing.assert_array_equal(group["timestamp_ns"][:], np.arange(150) * 1_000_000)
            assert group["frame_id"].dtype == np.uint64
            assert group["timestamp_ns"].dtype == np.int64
            assert group.attrs["frames_recorded"] == 150
            assert group.attrs["frames_dropped"] == 0
        camera = f["camera/frames"]
        assert camera.chunks == (1, 300, 512)
        assert f["small/frames"].chunks[0] > 1
        filters = camera.id.get_create_plist().get_nfilters()
        if compression is None:
            assert filters == 0
        else:
            assert camera.attrs["compression"] == compression
            filter_id = camera.id.get_create_plist().get_filter(0)[0]
            assert filter_id == {"lz4": 32004, "zstd": 32015, "bitshuffle-lz4": 32008}[compression]
            if compression != "lz4":  # lz4 alone barely shrinks noisy 16-bit images
                assert camera.id.get_storage_size() < 0.9 * camera.size * camera.dtype.itemsize


def test_root_attributes_describe_the_run(tmp_path: Path) -> None:
    path = tmp_path / "run.h5"
    before = dt.datetime.now(dt.UTC)
    metadata = {"mouse": "M12", "power_mw": 3.5, "trial": 7, "flags": [1, 2, 3], "dark": True}
    with RunWriter(
        path,
        [StreamSpec("cam", (4, 4), np.uint8)],
        run_id="run-42",
        pipeline="actors:\n  - name: cam\n",
        metadata=metadata,
    ) as writer:
        writer.write("cam", np.zeros((4, 4), np.uint8), 0, time.time_ns())
    after = dt.datetime.now(dt.UTC)
    with h5py.File(path, "r") as f:
        attrs = f.attrs
        assert attrs["rigd_version"] == rigd.__version__
        assert attrs["run_id"] == "run-42"
        assert attrs["pipeline"] == "actors:\n  - name: cam\n"
        assert attrs["host"] == os.uname().nodename
        start = dt.datetime.fromisoformat(attrs["start_time"])
        stop = dt.datetime.fromisoformat(attrs["stop_time"])
        assert start.tzinfo is not None
        assert before - dt.timedelta(seconds=1) <= start <= stop <= after + dt.timedelta(seconds=1)
        assert attrs["mouse"] == "M12"
        assert attrs["power_mw"] == 3.5
        assert attrs["trial"] == 7
        assert list(attrs["flags"]) == [1, 2, 3]
        assert bool(attrs["dark"]) is True


# -- live readers ---------------------------------------------------------------------------


def test_another_process_reads_the_file_while_it_is_written(tmp_path: Path) -> None:
    path = tmp_path / "live.h5"
    spec = StreamSpec("cam", (64, 128), np.uint16)
    count_code = """
        n = len(f["cam/frame_id"])
        ok = all(int(f["cam/frames"][i][0, 0]) == i for i in range(n))
        print(json.dumps({"n": n, "ok": ok, "state": f.attrs["run_state"]}))
    """
    with RunWriter(path, [spec], run_id="live", flush_interval=3600) as writer:
        for k in range(30):
            writer.write("cam", counter(spec.shape, np.uint16, k), k, time.time_ns())
        writer.flush()
        first = swmr_read(path, count_code)
        assert first == {"n": 30, "ok": True, "state": "recording"}
        for k in range(30, 75):
            writer.write("cam", counter(spec.shape, np.uint16, k), k, time.time_ns())
        writer.flush()
        second = swmr_read(path, count_code)
        assert second == {"n": 75, "ok": True, "state": "recording"}
        # rigd inspect reads it live too.
        out = subprocess.run(
            [*RIGD, "inspect", str(path)], capture_output=True, text=True, check=True
        )
        assert "run live: recording" in out.stdout
        assert "stream cam: 75 frames of 64x128 uint16" in out.stdout


def test_frames_become_visible_within_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "interval.h5"
    spec = StreamSpec("cam", (32, 32), np.uint16)
    with RunWriter(path, [spec], run_id="tick", flush_interval=0.1) as writer:
        for k in range(20):
            writer.write("cam", counter(spec.shape, np.uint16, k), k, time.time_ns())
        # No explicit flush: the writer's own interval makes them visible to
        # a reader in another process.
        wait_until(
            lambda: swmr_read(path, 'print(json.dumps(len(f["cam/frame_id"])))') == 20,
            timeout=30,
            what="frames flushed by the interval",
        )
        assert writer.statistics().flushes >= 1


@needs_h5dump
def test_hdf5_command_line_tools_read_a_sealed_run(tmp_path: Path) -> None:
    path = tmp_path / "tools.h5"
    spec = StreamSpec("cam", (2, 3), np.uint16)
    with RunWriter(path, [spec], run_id="tools") as writer:
        for k in range(5):
            writer.write("cam", counter(spec.shape, np.uint16, k), 100 + k, time.time_ns())
    dump = subprocess.run(
        ["h5dump", "-d", "/cam/frame_id", str(path)], capture_output=True, text=True, check=True
    )
    assert "100, 101, 102, 103, 104" in dump.stdout
    frames = subprocess.run(
        ["h5dump", "-d", "/cam/frames", "-s", "4,0,0", "-c", "1,2,3", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "4, 4, 4" in frames.stdout
    listing = subprocess.run(["h5ls", "-r", str(path)], capture_output=True, text=True, check=True)
    assert "/cam/frames" in listing.stdout
    assert "{5/Inf, 2, 3}" in listing.stdout


# -- crashes ----------------------------------------------------------------------------------


def assert_counter_frames(path: Path, n: int) -> None:
    with h5py.File(path, "r") as f:
        for name in ("small", "large"):
            group = f[name]
            assert len(group["frame_id"]) == n
            frames = group["frames"][:]
            assert frames.shape[0] == n
            for k in range(n):
                assert (frames[k] == k).all(), f"{name} frame {k} is not the counter pattern"
            np.testing.assert_array_equal(group["frame_id"][:], np.arange(n))


def test_sigkill_keeps_every_flushed_frame_and_recover_seals_it(tmp_path: Path) -> None:
    path = tmp_path / "crash.h5"
    with child("flush-then-hang", path) as proc:
        try:
            assert read_line(proc) == "flushed 40"
            assert read_line(proc) == "unflushed"
        finally:
            proc.send_signal(signal.SIGKILL)
    # HDF5 refuses a plain open of a file its writer never closed ...
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")
    # ... rigd inspect still reads it, and says it was never sealed.
    assert inspect_run(path).run_state == "recording"
    out = subprocess.run([*RIGD, "recover", str(path)], capture_output=True, text=True, check=True)
    assert "recovered" in out.stdout
    assert "small: 40 frames" in out.stdout
    assert_counter_frames(path, 40)
    with h5py.File(path, "r") as f:
        assert f.attrs["run_state"] == "recovered"
        assert f["small"].attrs["frames_recorded"] == 40
        assert "recovered_time" in f.attrs
    # Recovering again changes nothing.
    again = recover_run(path)
    assert again.repaired is False
    assert again.run_state == "recovered"
    if H5DUMP:
        dump = subprocess.run(
            ["h5dump", "-H", str(path)], capture_output=True, text=True, check=True
        )
        assert 'DATASET "frames"' in dump.stdout


def test_sigkill_during_interval_flushes_loses_at_most_the_last_interval(tmp_path: Path) -> None:
    path = tmp_path / "stream.h5"
    seen = {"small": 0, "large": 0}

    def visible() -> bool:
        # Each stream is flushed as far as its own frames reached the file.
        seen.update(
            swmr_read(
                path,
                'print(json.dumps({s: len(f[s + "/frame_id"]) for s in ("small", "large")}))',
            )
        )
        return min(seen.values()) >= 30

    with child("stream", path) as proc:
        try:
            assert read_line(proc) == "started"
            wait_until(visible, timeout=30, what="30 frames flushed by the writer")
        finally:
            proc.send_signal(signal.SIGKILL)
    report = recover_run(path)
    assert report.repaired
    for stream, count in seen.items():
        assert report.frames[stream] >= count, f"a {stream} frame a reader saw was lost"
    with h5py.File(path, "r") as f:
        for name in ("small", "large"):
            group = f[name]
            m = len(group["frame_id"])
            frames = group["frames"][:]
            assert all((frames[k] == k).all() for k in range(m))


def test_a_full_disk_stops_the_recording_cleanly_and_keeps_the_file(tmp_path: Path) -> None:
    path = tmp_path / "full.h5"
    with child("fsize", path, str(24 * 1024 * 1024)) as proc:
        lines = proc.communicate(timeout=60)[0].splitlines()
    assert proc.returncode == 3, lines
    flushed = [int(line.split()[1]) for line in lines if line.startswith("flushed")]
    error = lines[-1]
    assert error.startswith("error recording to")
    assert str(path) in error
    assert "free space" in error
    assert flushed, "the limit left no room for a single frame"
    # Every frame flushed before the error is in the file, and it opens.
    recover_run(path)
    with h5py.File(path, "r") as f:
        group = f["large"]
        n = len(group["frame_id"])
        assert n >= flushed[-1]
        frames = group["frames"][:n]
        assert all((frames[k] == k).all() for k in range(n))


# -- the ledger ------------------------------------------------------------------------------


def test_gaps_and_noted_drops_go_in_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "ledger.h5"
    spec = StreamSpec("cam", (8, 8), np.uint8)
    with RunWriter(path, [spec], run_id="ledger") as writer:
        for k in (0, 1, 2, 6, 7):  # ids 3..5 never arrive
            writer.write("cam", counter(spec.shape, np.uint8, k), k, time.time_ns())
        writer.note_dropped("cam", 8, 2, DropReason.RING_OVERRUN)  # the ring said so
        writer.note_dropped("cam", 10, 0, "restart of actor processor")
        for k in (10, 11):
            writer.write("cam", counter(spec.shape, np.uint8, k), k, time.time_ns())
        assert writer.statistics().frames_dropped == {"cam": 5}
    summary = inspect_run(path).streams[0]
    assert summary.frames == 7
    assert summary.dropped == 5
    assert summary.ledger == (
        (3, 3, "gap"),
        (8, 2, "ring_overrun"),
        (10, 0, "restart of actor processor"),
    )
    with h5py.File(path, "r") as f:
        assert f["cam"].attrs["frames_dropped"] == 5
        assert list(f["cam/dropped"]["first_id"]) == [3, 8, 10]


def test_latency_trace_is_recorded_and_can_be_turned_off(tmp_path: Path) -> None:
    path = tmp_path / "latency.h5"
    streams = [
        StreamSpec("traced", (16, 16), np.uint16),
        StreamSpec("plain", (16, 16), np.uint16, latency_trace=False),
    ]
    with RunWriter(path, streams, run_id="lat") as writer:
        for k in range(10):
            for s in streams:
                writer.write(s.name, counter(s.shape, np.uint16, k), k, time.time_ns())
    with h5py.File(path, "r") as f:
        latency = f["traced/latency_ns"][:]
        assert len(latency) == 10
        assert (latency >= 0).all()
        assert (latency < 60e9).all()
        assert "latency_ns" not in f["plain"]


# -- names and the no-overwrite rule -------------------------------------------------------


def test_file_names_come_from_the_template(tmp_path: Path) -> None:
    when = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.UTC)
    path = run_file_path(
        tmp_path, "run/7", template="{pipeline}-{date}-{time}-{run_id}", pipeline="demo", when=when
    )
    assert path == tmp_path / "demo-20260304-050607-run_7.h5"
    assert run_file_path(tmp_path, "a", when=when).name == "20260304_050607_a.h5"
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['mouse'\]"):
        run_file_path(tmp_path, "a", template="{mouse}.h5")
    with pytest.raises(ValueError, match="file name, not a path"):
        run_file_path(tmp_path, "a", template="sub/{run_id}.h5")


def test_an_existing_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "taken.h5"
    path.write_bytes(b"a previous run")
    with pytest.raises(FileExistsError, match="never overwrites"):
        RunWriter(path, [StreamSpec("cam", (4, 4), np.uint8)], run_id="again")
    assert path.read_bytes() == b"a previous run"


# -- bad input ------------------------------------------------------------------------------


def test_bad_frames_get_clear_errors_and_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.h5"
    spec = StreamSpec("cam", (4, 6), np.uint16)
    with RunWriter(path, [spec], run_id="bad") as writer:
        writer.write("cam", counter(spec.shape, np.uint16, 0), 0, 0)
        with pytest.raises(
            ValueError, match=r"records \(4, 6\) uint16 frames; got \(6, 4\) uint16"
        ):
            writer.write("cam", np.zeros((6, 4), np.uint16), 1, 0)
        with pytest.raises(ValueError, match=r"got \(4, 6\) float32"):
            writer.write("cam", np.zeros((4, 6), np.float32), 1, 0)
        with pytest.raises(KeyError, match=r"no stream 'camera'.*streams: \['cam'\]"):
            writer.write("camera", counter(spec.shape, np.uint16, 1), 1, 0)
        writer.write("cam", counter(spec.shape, np.uint16, 1), 1, 0)
    with pytest.raises(RecordingError, match="was closed"):
        writer.write("cam", counter(spec.shape, np.uint16, 2), 2, 0)
    assert inspect_run(path).streams[0].frames == 2


def test_bad_configuration_is_refused_before_a_file_exists(tmp_path: Path) -> None:
    path = tmp_path / "never.h5"
    cam = StreamSpec("cam", (4, 4), np.uint8)
    with pytest.raises(ValueError, match="unknown compression 'gzip'"):
        RunWriter(path, [StreamSpec("cam", (4, 4), np.uint8, compression="gzip")], run_id="x")
    with pytest.raises(ValueError, match="'run_id' is reserved"):
        RunWriter(path, [cam], run_id="x", metadata={"run_id": "other"})
    with pytest.raises(ValueError, match="convert it"):
        RunWriter(path, [cam], run_id="x", metadata={"nested": {"a": {1, 2}}})
    with pytest.raises(ValueError, match="NUL"):
        RunWriter(path, [cam], run_id="x", metadata={"note": "a\0b"})
    with pytest.raises(ValueError, match="unique"):
        RunWriter(path, [cam, cam], run_id="x")
    with pytest.raises(ValueError, match="must be a finite number of seconds > 0"):
        RunWriter(path, [cam], run_id="x", flush_interval=0)
    with pytest.raises(ValueError, match="cannot name an HDF5 group"):
        StreamSpec("a/b", (4, 4), np.uint8)
    with pytest.raises(ValueError, match="must be positive"):
        StreamSpec("cam", (0, 4), np.uint8)
    assert not path.exists()


def test_inspect_and_recover_refuse_what_is_not_a_run(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not hdf5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = [1, 2, 3]
    for command in ("inspect", "recover"):
        for path, message in (
            (text, "not an HDF5 file"),
            (other, "not a rigd run"),
            (tmp_path / "missing.h5", "No such file"),
        ):
            out = subprocess.run(
                [*RIGD, command, str(path)], capture_output=True, text=True, check=False
            )
            assert out.returncode == 1
            assert message in out.stderr
