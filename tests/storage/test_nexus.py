"""Run files as the field reads them: NeXus (h5py, silx, nexusformat, h5dump), live and sealed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import rigd
from rigd.storage import RunWriter, StreamReader, StreamSpec, inspect_run, recover_run
from tests.helpers import wait_until
from tests.storage.conftest import N_FRAMES
from tests.storage.test_recording import child, needs_h5dump, read_line


def test_a_run_file_is_a_nexus_file_whose_entry_links_to_the_streams(run_file: Path) -> None:
    with h5py.File(run_file, "r") as f:
        assert f.attrs["NX_class"] == "NXroot"
        assert f.attrs["default"] == "entry"
        assert f.attrs["creator"] == "rigd"
        entry = f["entry"]
        assert entry.attrs["NX_class"] == "NXentry"
        assert entry.attrs["default"] == "camera"
        assert entry["start_time"][()].decode() == f.attrs["start_time"]
        assert entry["end_time"][()].decode() == f.attrs["stop_time"]
        assert entry["program_name"][()].decode() == "rigd"
        assert entry["program_name"].attrs["version"] == rigd.__version__
        assert entry["instrument"].attrs["NX_class"] == "NXinstrument"
        detector = entry["instrument/camera"]
        assert detector.attrs["NX_class"] == "NXdetector"
        # Hard links: the same datasets, stored once.
        assert detector["data"] == f["camera/frames"]
        assert detector["sequence_number"] == f["camera/frame_id"]
        data = entry["camera"]
        assert data.attrs["NX_class"] == "NXdata"
        assert data.attrs["signal"] == "data"
        assert list(data.attrs["axes"]) == ["frame_id", ".", "."]
        assert data["data"] == f["camera/frames"]
        assert data["data"].shape == (N_FRAMES, 32, 48)
        assert f["camera/frames"].attrs["units"] == "counts"
        assert f["camera/frames"].attrs["interpretation"] == "image"


def test_per_frame_records_and_the_ledger_say_what_they_hold(run_file: Path) -> None:
    with h5py.File(run_file, "r") as f:
        camera = f["camera"]

        stamps = dict(camera["timestamp_ns"].attrs)
        latency = dict(camera["latency_ns"].attrs)
        ledger = dict(camera["dropped"].attrs)

    assert stamps["units"] == "ns"
    assert "Unix epoch" in stamps["description"]
    assert latency["units"] == "ns"
    assert latency["long_name"] == "latency to disk"
    assert "restart" in ledger["description"]
    assert "first_id" in ledger["description"]


def test_records_streams_store_their_fields_by_name(run_file: Path) -> None:
    with h5py.File(run_file, "r") as f:
        stats = f["entry/stats_stats"]
        shifts = f["entry/motion_shifts"]
        columns = f["stats_stats/frames"][:]

        assert stats.attrs["NX_class"] == "NXdata"
        assert stats.attrs["signal"] == "mean"
        assert list(stats.attrs["auxiliary_signals"]) == ["min", "max"]
        for k, name in enumerate(("mean", "min", "max")):
            np.testing.assert_array_equal(stats[name][:], columns[:, k])
            assert stats[name].attrs["units"] == "counts"
        assert list(f["stats_stats/frames"].attrs["field_names"]) == ["mean", "min", "max"]
        assert [shifts[n].attrs["units"] for n in ("y", "x")] == ["pixel", "pixel"]
        assert shifts["peak"].attrs["long_name"] == "correlation peak (0 to 1)"
        assert len(shifts["y"]) == len(f["motion_shifts/frame_id"])
    # The counter pattern: frame k is k everywhere, so mean = min = max = k.
    np.testing.assert_array_equal(columns[:, 0], np.arange(N_FRAMES))


def test_silx_finds_the_image_by_default(run_file: Path) -> None:
    from silx.io.nxdata import get_default

    with h5py.File(run_file, "r") as f:
        nxdata = get_default(f)

        assert nxdata is not None
        assert nxdata.is_valid
        assert nxdata.signal.name == "/entry/camera/data"
        assert nxdata.signal.shape == (N_FRAMES, 32, 48)
        assert nxdata.interpretation == "image"
        assert nxdata.axes_dataset_names[0] == "frame_id"


def test_nexusformat_loads_the_tree(run_file: Path) -> None:
    from nexusformat.nexus import nxload

    root = nxload(str(run_file), "r")
    try:
        entry = root["entry"]
        assert entry.nxclass == "NXentry"
        assert root.plottable_data.nxpath == "/entry/camera"
        assert entry["camera"].nxsignal.shape == (N_FRAMES, 32, 48)
        assert entry["camera"].nxaxes[0].nxname == "frame_id"
        assert entry["instrument/camera"].nxclass == "NXdetector"
        assert entry["stats_stats"].nxsignal.nxname == "mean"
        assert str(entry["stats_stats/mean"].attrs["units"]) == "counts"
    finally:
        root.nxfile.close()


@needs_h5dump
def test_h5dump_shows_the_nexus_classes(run_file: Path) -> None:
    out = subprocess.run(
        [str(shutil.which("h5dump")), "-A", "-g", "/entry/camera", str(run_file)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert out.returncode == 0, out.stderr
    assert '"NXdata"' in out.stdout
    assert 'ATTRIBUTE "signal"' in out.stdout


# -- live readers: never an unwritten frame -------------------------------------------


def _frames_seen_live(path: Path, extents: int) -> list[tuple[str, int, int]]:
    """Open the file afresh (SWMR) until ``extents`` different extents were seen;
    return (stream, extent, value of the last frame) for each read."""
    seen: list[tuple[str, int, int]] = []
    distinct: set[int] = set()

    def read() -> bool:
        with h5py.File(path, "r", libver=("v110", "v110"), swmr=True) as f:
            for stream in ("small", "large"):
                frames = f[f"{stream}/frames"]
                n = frames.shape[0]
                if n:
                    # What a naive reader does: the last frame of the dataset.
                    seen.append((stream, n, int(frames[-1].max())))
                    distinct.add(n)
        return len(distinct) >= extents

    wait_until(read, timeout=60, what=f"{extents} extents")
    return seen


@pytest.mark.parametrize(
    ("buffers", "compression"),
    [("8", None), ("0", None), ("8", "lz4")],
    ids=["io-thread", "recorder", "lz4"],
)
def test_a_live_reader_never_sees_an_unwritten_frame(
    tmp_path: Path, buffers: str, compression: str | None
) -> None:
    path = tmp_path / "live.h5"
    proc = child("stream", path, buffers, *([compression] if compression else []))
    try:
        assert read_line(proc) == "started"

        seen = _frames_seen_live(path, extents=25)

    finally:
        proc.kill()
        proc.wait()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    # Frame k is filled with k: the last frame of n is n - 1, never a blank one.
    wrong = [(s, n, v) for s, n, v in seen if v != (n - 1) % 65536]
    assert wrong == []


def test_silx_finds_the_image_in_a_live_run(tmp_path: Path) -> None:
    from silx.io.nxdata import get_default

    path = tmp_path / "live.h5"
    spec = StreamSpec("cam", (16, 24), np.uint16)
    with RunWriter(path, [spec], run_id="live", flush_interval=3600) as writer:
        for k in range(30):
            writer.write("cam", np.full(spec.shape, k + 1, np.uint16), k, k)
        writer.flush()

        with h5py.File(path, "r", libver=("v110", "v110"), swmr=True) as f:
            nxdata = get_default(f)
            assert nxdata is not None
            assert nxdata.signal.shape == (30, 16, 24)
            assert int(nxdata.signal[-1].min()) == 30


# -- files from before NeXus -------------------------------------------------------------


def test_a_run_from_before_nexus_still_inspects_and_plays(old_run: Path) -> None:
    summary = inspect_run(old_run)
    with StreamReader(old_run, "camera") as reader:
        frame = np.empty(reader.shape, reader.dtype)
        reader.read_into(len(reader) - 1, frame)
    out = subprocess.run(
        [sys.executable, "-m", "rigd", "inspect", str(old_run)],
        capture_output=True,
        text=True,
        check=False,
    )

    assert summary.run_id == "old-run"
    assert [s.frames for s in summary.streams] == [79, 79]
    assert summary.streams[0].ledger == ((5, 1, "gap"),)
    assert int(frame.min()) == 179
    assert out.returncode == 0, out.stderr
    assert "stream camera: 79 frames of 8x8 uint16" in out.stdout
    assert "NeXus: none (written before run files carried NeXus)" in out.stdout


def test_a_run_from_before_nexus_still_recovers(old_run: Path) -> None:
    report = recover_run(old_run)

    assert report.run_state == "complete"
    assert report.frames == {"camera": 79, "stats": 79}


def test_inspect_shows_the_nexus_view(run_file: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "rigd", "inspect", str(run_file)],
        capture_output=True,
        text=True,
        check=False,
    )

    lines = out.stdout.splitlines()
    at = lines.index("  NeXus: /entry (NXentry), default /entry/camera")

    assert out.returncode == 0, out.stderr
    assert lines[at + 1 : at + 4] == [
        "    /entry/camera (NXdata): data [60, 32, 48] counts, axes frame_id",
        "    /entry/motion_shifts (NXdata): y, x, peak [60] pixel, axes frame_id",
        "    /entry/stats_stats (NXdata): mean, min, max [60] counts, axes frame_id",
    ]
