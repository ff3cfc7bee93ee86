"""`rigd recover` never touches a live or truncated file; inspect and export tell a
live run from a file whose writer is gone (killed) and name `rigd recover` for it."""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

from rigd.service._serve import recover_data_dir
from rigd.storage import (
    RunWriter,
    StreamSpec,
    check_whole,
    export_nwb,
    inspect_run,
    recover_run,
    writer_alive,
)
from rigd.storage._reserve import reserve_path
from rigd.storage._superblock import lookup3, read_superblock
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
RIGD = [sys.executable, "-m", "rigd"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def open_fds() -> list[str]:
    return sorted(os.listdir("/proc/self/fd"))


def start_child(mode: str, path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.storage.recording_child", mode, str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line not in ("started", "flushed 40"):
        proc.kill()
        raise AssertionError(f"child exited early: {line} {proc.communicate(timeout=30)}")
    return proc


@pytest.fixture
def live_run(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen[str]]]:
    """A run file a live child process is recording into (frames flushed every 0.1 s)."""
    path = tmp_path / "data" / "live1.h5"
    path.parent.mkdir()
    proc = start_child("stream", path)
    try:
        wait_until(lambda: inspect_run(path).frames > 0, timeout=30, what="frames flushed")
        yield path, proc
    finally:
        proc.kill()
        proc.communicate(timeout=30)


def killed_run(path: Path) -> Path:
    """A run file whose writer was killed (-9) after flushing 40 frames per stream."""
    proc = start_child("flush-then-hang", path)
    proc.kill()
    proc.communicate(timeout=30)
    return path


def sealed_run(path: Path, frames: int = 300) -> Path:
    with RunWriter(path, [StreamSpec("cam", (64, 64), np.uint16)], run_id="sealed") as writer:
        for k in range(frames):
            writer.write("cam", np.full((64, 64), k, np.uint16), k, k)
    return path


def test_recover_refuses_a_file_a_live_writer_holds_and_changes_nothing(
    live_run: tuple[Path, subprocess.Popen[str]], tmp_path: Path
) -> None:
    path, proc = live_run
    fds = open_fds()
    assert writer_alive(path)
    assert reserve_path(path).exists()
    with pytest.raises(OSError, match="still being written by a live run") as info:
        recover_run(path)
    assert str(path) in str(info.value)
    assert open_fds() == fds, "the refusal left a descriptor open"
    # The writer's reserve stays, the file stays unsealed and recording goes on.
    assert reserve_path(path).exists()
    assert read_superblock(path).open_for_write
    summary = inspect_run(path)
    assert summary.run_state == "recording"
    assert not summary.writer_gone
    before = summary.frames
    wait_until(lambda: inspect_run(path).frames > before, timeout=30, what="more frames")
    # The CLI: one line for the live file, the other file still processed, rc 1.
    dead = killed_run(tmp_path / "dead.h5")
    out = subprocess.run(
        [*RIGD, "recover", str(path), str(dead)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1
    assert f"{path} is still being written by a live run" in out.stderr
    assert "Traceback" not in out.stderr
    assert f"{dead}: recovered" in out.stdout
    assert proc.poll() is None, "the writer died"
    assert inspect_run(path).run_state == "recording"


def test_the_daemons_start_repair_skips_a_live_run_and_repairs_a_dead_one(
    live_run: tuple[Path, subprocess.Popen[str]], caplog: pytest.LogCaptureFixture
) -> None:
    path, _ = live_run
    dead = killed_run(path.parent / "dead.h5")
    with caplog.at_level(logging.INFO, logger="rigd.service._serve"):
        repaired = recover_data_dir(path.parent)
    assert repaired == [str(dead)]
    skipped = [r for r in caplog.records if str(path) in r.getMessage()]
    assert [(r.levelno, r.getMessage()) for r in skipped] == [
        (logging.INFO, f"left {path} alone: a live run is writing it")
    ]
    assert reserve_path(path).exists()
    assert read_superblock(path).open_for_write


def test_a_truncated_file_is_refused_byte_for_byte_and_the_others_still_go(
    tmp_path: Path,
) -> None:
    whole = sealed_run(tmp_path / "whole.h5")
    cut = tmp_path / "t4.h5"
    cut.write_bytes(whole.read_bytes()[:100_000])
    dead = killed_run(tmp_path / "good2.h5")
    before = digest(cut)
    out = subprocess.run(
        [*RIGD, "recover", str(cut), str(dead)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1
    refusal = [line for line in out.stderr.splitlines() if str(cut) in line]
    assert len(refusal) == 1, out.stderr
    assert f"{cut} is truncated: it holds 100000 bytes" in refusal[0]
    assert "Copy the whole file again" in refusal[0]
    assert f"{dead}: recovered" in out.stdout
    assert cut.stat().st_size == 100_000
    assert digest(cut) == before
    assert not reserve_path(cut).exists()
    # inspect says the same, and changes nothing either.
    out = subprocess.run(
        [*RIGD, "inspect", str(cut)], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 1
    assert f"{cut} is truncated" in out.stderr
    assert "Traceback" not in out.stderr
    assert digest(cut) == before


def test_a_cut_copy_is_refused_even_where_its_metadata_survived(tmp_path: Path) -> None:
    # A sealed file one byte short: its writer wrote everything before sealing.
    sealed = tmp_path / "sealed.h5"
    sealed.write_bytes(sealed_run(tmp_path / "whole.h5", frames=20).read_bytes()[:-1])
    # A killed writer's file cut inside the frames its last flush kept.
    dead = killed_run(tmp_path / "dead.h5")
    with h5py.File(dead, "r", swmr=True) as f:
        chunk = f["large/frames"].id.get_chunk_info_by_coord((20, 0, 0))
    cut = tmp_path / "cut.h5"
    cut.write_bytes(dead.read_bytes()[: chunk.byte_offset + 100])
    for path in (sealed, cut):
        before, fds = digest(path), open_fds()
        with pytest.raises(ValueError, match=f"{path} is truncated: it holds"):
            recover_run(path)
        assert digest(path) == before
        assert open_fds() == fds, "the refusal left a descriptor open"


def test_a_killed_file_short_only_of_unwritten_chunk_space_is_still_recovered(
    tmp_path: Path,
) -> None:
    # A writer killed between giving a chunk its space and writing its bytes
    # leaves the file short of the end its superblock records: whole metadata.
    path = killed_run(tmp_path / "short.h5")
    block = read_superblock(path)
    recorded_end = block.end_of_file + (4 << 20)
    with open(path, "r+b") as f:
        f.seek(block.offset)
        raw = bytearray(f.read(block.size))
        struct.pack_into("<Q", raw, 12 + 2 * raw[9], recorded_end)
        struct.pack_into("<I", raw, block.size - 4, lookup3(bytes(raw[: block.size - 4])))
        f.seek(block.offset)
        f.write(raw)
    assert path.stat().st_size < recorded_end
    check_whole(path)  # the test inspect, export and reprocess share: not truncated
    assert inspect_run(path).writer_gone
    report = recover_run(path)
    assert report.repaired
    assert report.frames == {"small": 40, "large": 40}
    assert path.stat().st_size >= recorded_end
    with h5py.File(path, "r") as f:
        assert f.attrs["run_state"] == "recovered"


def test_inspect_and_export_tell_a_killed_writers_file_from_a_live_run(
    live_run: tuple[Path, subprocess.Popen[str]], tmp_path: Path
) -> None:
    pytest.importorskip("pynwb")
    live, _ = live_run
    dead = killed_run(tmp_path / "c4.h5")
    assert not writer_alive(dead)
    out = subprocess.run(
        [*RIGD, "inspect", str(live), str(dead)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    live_text, dead_text = out.stdout.split(f"{dead}\n")
    assert "run stream: recording\n" in live_text
    assert "rigd recover" not in live_text
    assert (
        "run crash: recording; not sealed, and no run writes it: its writer was killed "
        f"or crashed; seal it with `rigd recover {dead}`" in dead_text
    )
    with pytest.raises(ValueError, match="still being recorded; export it once the run"):
        export_nwb(live, tmp_path / "live.nwb")
    out = subprocess.run(
        [*RIGD, "export", str(dead), "--nwb", str(tmp_path / "c4.nwb")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 1
    assert "its writer was killed or crashed" in out.stderr
    assert f"`rigd recover {dead}`" in out.stderr
    assert not (tmp_path / "c4.nwb").exists()
    assert read_superblock(dead).open_for_write, "inspect or export changed the file"
