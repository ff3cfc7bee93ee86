"""NWB export of a run recorded by a real pipeline, read by pynwb, checked by nwbinspector."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rigd.storage import export_nwb
from tests.storage.conftest import N_FRAMES

pynwb = pytest.importorskip("pynwb")
nwbinspector = pytest.importorskip("nwbinspector")

META = {
    "session_description": "a simulated camera, its stats and motion shifts",
    "subject_id": "M12",
    "species": "Mus musculus",
    "age": "P90D",
    "sex": "F",
    "experimenter": "Doe, Jane",
    "institution": "Rig University",
    "lab": "Acquisition",
    "experiment_description": "rigd's NWB export under test",
    "keywords": ["rigd", "test"],
    "subject_description": "a wild-type mouse",
}


def serious(path: Path) -> list[str]:
    """nwbinspector's messages at violation level or worse (and pynwb's validation)."""
    importance = nwbinspector.Importance
    bad = {importance.CRITICAL, importance.BEST_PRACTICE_VIOLATION, importance.ERROR}
    bad |= {i for i in importance if i.name == "PYNWB_VALIDATION"}
    return [
        f"{m.importance.name} {m.check_function_name} {m.object_name}: {m.message}"
        for m in nwbinspector.inspect_nwbfile(nwbfile_path=str(path))
        if m.importance in bad
    ]


@pytest.mark.parametrize("link", [True, False], ids=["linked", "copied"])
def test_an_nwb_export_passes_nwbinspector(run_file: Path, tmp_path: Path, link: bool) -> None:
    out = tmp_path / "run.nwb"

    export_nwb(run_file, out, link=link, compression=not link, metadata=META)

    assert serious(out) == []


def test_an_nwb_export_holds_the_frames_times_records_and_subject(
    run_file: Path, tmp_path: Path
) -> None:
    import h5py

    out = tmp_path / "run.nwb"
    export_nwb(run_file, out, metadata=META)

    with h5py.File(run_file, "r") as f:
        frames = f["camera/frames"][:]
        stamps = f["camera/timestamp_ns"][:]
        stats = f["stats_stats/frames"][:]
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        camera = nwb.acquisition["camera"]
        assert type(camera).__name__ == "ImageSeries"
        np.testing.assert_array_equal(camera.data[:], frames)
        np.testing.assert_allclose(np.diff(camera.timestamps[:]), np.diff(stamps) / 1e9)
        assert camera.unit == "counts"
        mean = nwb.processing["misc"]["stats_stats_mean"]
        np.testing.assert_array_equal(mean.data[:], stats[:, 0])
        np.testing.assert_array_equal(mean.timestamps[:], camera.timestamps[:])
        assert nwb.processing["misc"]["motion_shifts_x"].unit == "pixel"
        assert nwb.subject.subject_id == "M12"
        assert nwb.subject.species == "Mus musculus"
        assert list(nwb.experimenter) == ["Doe, Jane"]
        assert nwb.session_id == "nexus-run"
    assert len(frames) == N_FRAMES


def test_an_nwb_export_without_required_metadata_names_what_is_missing(
    run_file: Path, tmp_path: Path
) -> None:
    with pytest.raises(
        ValueError,
        match=r"^the run lacks metadata NWB requires: session_description, subject_id, species, "
        r"age or date_of_birth; give them at `rigd start --meta KEY=VALUE` or to the export",
    ):
        export_nwb(run_file, tmp_path / "run.nwb")
    assert not (tmp_path / "run.nwb").exists()


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("age", "90days", "age '90days' is not an ISO 8601 duration, which NWB requires: give"),
        ("age", "P90D/soon", "age 'P90D/soon' is not an ISO 8601 duration"),
        ("age", "90", "age '90' is not an ISO 8601 duration"),
        ("date_of_birth", "last spring", "date_of_birth 'last spring' is not an ISO 8601 date"),
    ],
)  # fmt: skip
def test_a_subject_age_or_birth_date_nwb_cannot_read_is_refused_with_the_form(
    run_file: Path, tmp_path: Path, key: str, value: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        export_nwb(run_file, tmp_path / "run.nwb", metadata={**META, key: value})
    assert not (tmp_path / "run.nwb").exists()


def test_an_age_range_is_an_age(run_file: Path, tmp_path: Path) -> None:
    export_nwb(run_file, tmp_path / "run.nwb", metadata={**META, "age": "P90D/P100D"})
    with pynwb.NWBHDF5IO(str(tmp_path / "run.nwb"), "r") as io:
        assert io.read().subject.age == "P90D/P100D"


def test_an_imaging_stream_exports_as_a_one_photon_series(run_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "run.nwb"
    optics = {"indicator": "GCaMP6f", "location": "VISp", "excitation_lambda": 470.0}

    with pytest.raises(ValueError, match=r"requires: emission_lambda;"):
        export_nwb(run_file, out, metadata={**META, **optics}, imaging={"camera": "one_photon"})
    export_nwb(
        run_file,
        out,
        metadata={**META, **optics, "emission_lambda": 525.0},
        imaging={"camera": "one_photon"},
    )

    assert serious(out) == []
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        series = nwb.acquisition["camera"]
        assert type(series).__name__ == "OnePhotonSeries"
        assert series.imaging_plane.indicator == "GCaMP6f"


def test_the_drop_ledger_exports_as_an_intervals_table(old_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "old.nwb"

    export_nwb(old_run, out, metadata=META)

    assert serious(out) == []
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        table = io.read().intervals["dropped_frames"].to_dataframe()
    assert list(table["stream"]) == ["camera, stats"]
    assert list(table["first_id"]) == [5]
    assert list(table["count"]) == [1]
    assert list(table["reason"]) == ["gap"]
    # From frame 4 to frame 6, 10 ms apart each (the old file's clock).
    np.testing.assert_allclose(table["stop_time"] - table["start_time"], [0.02])


def test_rigd_export_writes_nwb_from_the_command_line(run_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.nwb"
    meta = [f"--meta={k}={v}" for k, v in META.items() if isinstance(v, str)]

    done = subprocess.run(
        [sys.executable, "-m", "rigd", "export", str(run_file), "--nwb", str(out), *meta],
        capture_output=True,
        text=True,
        check=False,
    )
    missing = subprocess.run(
        [sys.executable, "-m", "rigd", "export", str(run_file), "--nwb", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert f"{out}: NWB (frames linked to {run_file}; keep both files)" in done.stdout
    assert serious(out) == []
    assert missing.returncode == 1
    assert "session_description, subject_id, species" in missing.stderr


def _linked_frames(nwb_path: Path) -> np.ndarray:
    """The camera frames as pynwb reads them through the NWB file's link."""
    with pynwb.NWBHDF5IO(str(nwb_path), "r") as io:
        return np.asarray(io.read().acquisition["camera"].data[:])


def test_an_nwb_file_and_its_run_file_moved_together_still_link(
    run_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Was: `rigd export data/run.h5 --nwb run.nwb` stored the link as
    # "data/run.h5": the pair moved into one directory lost the frames.
    import h5py

    with h5py.File(run_file, "r") as f:
        frames = f["camera/frames"][:]
    (tmp_path / "data").mkdir()
    shutil.copy(run_file, tmp_path / "data" / "run.h5")
    monkeypatch.chdir(tmp_path)
    export_nwb("data/run.h5", "run.nwb", metadata=META)
    np.testing.assert_array_equal(_linked_frames(tmp_path / "run.nwb"), frames)
    # Exported beside the run file: the link is the run file's name alone.
    export_nwb(tmp_path / "data" / "run.h5", tmp_path / "data" / "beside.nwb", metadata=META)
    with h5py.File(tmp_path / "data" / "beside.nwb", "r") as f:
        link = f["acquisition/camera"].get("data", getlink=True)
        assert (link.filename, link.path) == ("run.h5", "/camera/frames")

    moved = tmp_path / "elsewhere" / "session1"
    moved.mkdir(parents=True)
    for name in ("data/run.h5", "run.nwb", "data/beside.nwb"):
        shutil.move(tmp_path / name, moved / Path(name).name)
    monkeypatch.chdir("/")  # HDF5 must not find the run file by the working directory

    np.testing.assert_array_equal(_linked_frames(moved / "run.nwb"), frames)
    np.testing.assert_array_equal(_linked_frames(moved / "beside.nwb"), frames)
    with h5py.File(moved / "beside.nwb", "r") as f:
        np.testing.assert_array_equal(f["acquisition/camera/data"][:], frames)
