"""SIGTERM (and SIGHUP) to a script in a ``with Pipeline(...)`` block stops its run
as Ctrl-C does: the block unwinds, the run is stopped and its file sealed."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from rigd.pipeline import StopSignal
from rigd.pipeline._block_signals import BlockSignals
from rigd.storage import check_sealed, inspect_run
from tests.helpers import child_pids, pid_alive, session_files, wait_until

SCRIPT = """
import sys
from rigd.pipeline import Pipeline, plan_pipeline

with Pipeline(plan_pipeline(sys.argv[1]), run_id="term1") as pipeline:
    while pipeline.status().links[0].written < 20:  # frames on their way to the file
        pipeline.wait(0.01)
    print("running", flush=True)
    pipeline.wait()
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_sigterm_or_sighup_to_a_script_in_a_with_block_stops_its_run_and_seals_its_file(
    tmp_path: Path, sig: signal.Signals
) -> None:
    # Was: SIGTERM ended the script at once; its actors ended with their head
    # and the run file was left unsealed.
    data = tmp_path / "data"
    plan = tmp_path / "term.yaml"
    plan.write_text(
        textwrap.dedent(f"""
        name: term
        actors:
          - {{name: camera, class: rigd.pipeline.SimulatedCamera,
             options: {{shape: [16, 16], fps: 200, n_frames: 1000000}}}}
        record: [camera.frames]
        recording: {{directory: {data}}}
        """)
    )
    script = tmp_path / "acquire.py"
    script.write_text(SCRIPT)
    with subprocess.Popen(
        [sys.executable, str(script), str(plan)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        running = threading.Event()
        threading.Thread(
            target=lambda: proc.stdout.readline() == "running\n" and running.set(),  # type: ignore[union-attr]
            daemon=True,
        ).start()
        if not running.wait(60):
            proc.kill()
            raise AssertionError(f"the script did not start its run: {proc.communicate()[1]}")
        workers = child_pids(proc.pid)
        assert workers
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    assert f"StopSignal: {sig.name} received" in err, err  # raised in the block, as Ctrl-C's is
    assert "Traceback" in err
    (file,) = data.rglob("*.h5")
    check_sealed(str(file))
    summary = inspect_run(file)
    assert summary.run_state == "complete"
    assert summary.frames >= 20  # every frame taken was drained into it
    # Nothing left: the actors ended, the rings and sockets went with the run.
    wait_until(lambda: not any(pid_alive(p) for p in workers), timeout=10, what="the actors")
    assert session_files(proc.pid) == []


def test_the_block_s_handlers_raise_a_keyboard_interrupt_and_are_put_back_after() -> None:
    def mine(signum: int, frame: object) -> None:
        pass

    previous_term = signal.signal(signal.SIGTERM, mine)
    previous_hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup leaves it
    try:
        block = BlockSignals()
        # From another thread nothing changes (signal.signal is the main thread's).
        other = threading.Thread(target=block.take)
        other.start()
        other.join()
        assert signal.getsignal(signal.SIGTERM) is mine
        block.take()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # still ignored
        with pytest.raises(KeyboardInterrupt) as raised:
            signal.raise_signal(signal.SIGTERM)  # its Python handler runs before it returns
        assert isinstance(raised.value, StopSignal)
        assert raised.value.signum == signal.SIGTERM
        block.restore()
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGHUP, previous_hup)
