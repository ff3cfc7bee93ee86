"""A forced ``rigd run`` stop (Ctrl-C while it stops): its summary says it was forced,
and its counts are the repaired file's, drop ledger included."""

from __future__ import annotations

import re
import signal
from pathlib import Path

from rigd.storage import inspect_run
from tests.service.test_run import no_rings_of
from tests.service.test_run_stops import Run, only_file

# A camera that is not held back, into a lossless reader that takes 50 ms a
# frame: their ring fills, the camera drops (ring_full), and the clean stop
# waits for the reader to drain its 64 slots (about 3 s): time to force it.
DROPPING = (
    "name: dropping\n"
    "actors:\n"
    "  - {name: camera, class: rigd.pipeline.SimulatedCamera,"
    " options: {shape: [32, 32], fps: 200}}\n"
    "  - {name: slow, class: tests.pipeline.actors.SlowViewer, options: {delay: 0.05}}\n"
    "links:\n"
    "  - {link: camera.frames -> slow.frames, slots: 64}\n"
    "record: [camera.frames]\n"
)


def test_a_forced_stops_summary_says_so_and_agrees_with_the_files_drop_ledger(
    tmp_path: Path,
) -> None:
    # Was: "camera: 104 frames recorded, 0 dropped" (the killed recorder's report
    # from its start) while the file's ledger held 289 ring_full frames.
    (tmp_path / "dropping.yaml").write_text(DROPPING)
    run = Run(tmp_path, "dropping.yaml")
    run.wait_for("frame(s) dropped at camera.frames")
    run.proc.send_signal(signal.SIGINT)
    run.wait_for("Ctrl-C again forces")
    run.proc.send_signal(signal.SIGINT)
    status, out, err = run.end()
    assert status == 130, err
    assert "rigd run: forced stop" in err
    found = re.search(r"camera: (\d+) frames recorded, (\d+) dropped", out)
    assert found, out
    summary = inspect_run(only_file(tmp_path))
    assert summary.run_state == "recovered"
    (camera,) = summary.streams
    assert camera.dropped > 0
    assert {reason for _, _, reason in camera.ledger} == {"ring_full"}
    assert (int(found[1]), int(found[2])) == (camera.frames, camera.dropped), out
    first, *_ = out.splitlines()
    assert "(forced: actors killed, run files repaired)" in first, out
    assert no_rings_of(run.pid)
