"""``rigd reprocess``: a pipeline of several recorders, a failed replay's files, unsealed inputs."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np

from rigd.service._reprocess import reprocess
from tests.service.test_reprocess import PIPELINE, run_file

TWO_RECORDERS = PIPELINE.replace(
    "  - {link: rowsum.sums -> recorder.sums}",
    "  - {link: rowsum.sums -> sums.sums}",
).replace(
    "links:",
    "  - name: sums\n    class: rigd.pipeline.HDF5Recorder\n    options: {directory: rigd-data}\n"
    "links:",
)


def test_each_of_two_recorders_gets_its_own_output_file(tmp_path: Path) -> None:
    # Was: both wrote <run>-reprocessed.h5; the second failed with FileExistsError
    # and the first was left sealed "complete" with 0 frames.
    pipeline = tmp_path / "two_pcs.yaml"
    pipeline.write_text(TWO_RECORDERS)
    frames = run_file(tmp_path / "run.h5", 3, 25)

    (result,) = reprocess(pipeline, [str(tmp_path / "run.h5")], tmp_path / "out")

    assert result.state == "done", result.error
    names = sorted(Path(p).name for p in result.outputs)
    assert names == ["run-reprocessed-recorder.h5", "run-reprocessed-sums.h5"]
    with h5py.File(tmp_path / "out" / "run-reprocessed-recorder.h5", "r") as f:
        assert f.attrs["run_state"] == "complete"
        np.testing.assert_array_equal(f["camera/frames"][:], frames)
        assert "sums" not in f
    with h5py.File(tmp_path / "out" / "run-reprocessed-sums.h5", "r") as f:
        assert f.attrs["run_state"] == "complete"
        expected = frames[:, 0, :].sum(axis=1, dtype=np.int64)[:, None]
        np.testing.assert_array_equal(f["sums/frames"][:], expected)
    # A rerun refuses, naming the file, and changes neither.
    (again,) = reprocess(pipeline, [str(tmp_path / "run.h5")], tmp_path / "out")
    assert again.state == "failed"
    assert "run-reprocessed-recorder.h5 exists" in (again.error or "")


def test_the_files_of_a_failed_replay_are_marked_failed_not_complete(tmp_path: Path) -> None:
    broken = TWO_RECORDERS.replace(
        "tests.pipeline.actors.RowSum", "tests.service.test_reprocess_inline.Broken"
    )
    pipeline = tmp_path / "broken.yaml"
    pipeline.write_text(broken)
    run_file(tmp_path / "run.h5", 4, 30)

    (result,) = reprocess(pipeline, [str(tmp_path / "run.h5")], tmp_path / "out")

    assert result.state == "failed"
    written = sorted((tmp_path / "out").iterdir())
    assert written, "the replay wrote nothing to mark"
    for path in written:
        with h5py.File(path, "r") as f:
            assert f.attrs["run_state"] == "failed", path
            assert "the model file is missing" in f.attrs["failure"]


WRITER = textwrap.dedent(
    """
    import sys, numpy as np
    from rigd.storage import RunWriter, StreamSpec
    spec = StreamSpec("camera", (8, 12), np.dtype(np.uint16))
    writer = RunWriter(sys.argv[1], [spec], run_id="live")
    for k in range(5):
        writer.write("camera", np.full((8, 12), k, np.uint16), k, 1_700_000_000_000_000_000 + k)
    writer.flush()
    print("flushed", flush=True)
    sys.stdin.read()  # killed here: its writer never seals the file
    """
)


def killed_writer(path: Path) -> None:
    """A run file at ``path`` whose writer flushed five frames and was killed (-9)."""
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "flushed"
        finally:
            proc.send_signal(signal.SIGKILL)


def test_an_unsealed_input_is_refused_naming_rigd_recover(tmp_path: Path) -> None:
    pipeline = tmp_path / "rowsums.yaml"
    pipeline.write_text(PIPELINE)
    path = tmp_path / "live.h5"
    with subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "flushed"
            # While its writer lives (a run still recording) ...
            (live,) = reprocess(pipeline, [str(path)], tmp_path / "out")
        finally:
            proc.send_signal(signal.SIGKILL)
    # ... and once it died.
    (dead,) = reprocess(pipeline, [str(path)], tmp_path / "out")

    for result in (live, dead):
        assert result.state == "failed"
        assert f"{path} is not sealed" in (result.error or "")
        assert f"rigd recover {path}" in (result.error or "")
        assert "h5clear" not in (result.error or "")
    assert list((tmp_path / "out").iterdir()) == []
