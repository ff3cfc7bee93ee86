"""A run's private status directory: removed at teardown, and swept after a SIGKILL."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rigd.pipeline._run_log import RunLog


def test_a_killed_supervisors_status_directory_is_removed_when_the_next_run_starts() -> None:
    # A supervisor killed with SIGKILL never tears its run down: its directory
    # stays. Its pid, in the name, is that of a process that is gone.
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=30)
    tmp = Path(tempfile.gettempdir())
    stale = Path(tempfile.mkdtemp(prefix=f"rigd-run-{child.pid}-killed-", dir=tmp))
    (stale / "camera.error").write_text("RuntimeError: boom")
    live = Path(tempfile.mkdtemp(prefix=f"rigd-run-{os.getpid()}-other-", dir=tmp))
    unrelated = Path(tempfile.mkdtemp(prefix="rigd-run-notapid-", dir=tmp))
    try:
        log = RunLog("next", None)

        assert not stale.exists()
        assert live.exists(), "a running supervisor's directory is kept"
        assert unrelated.exists(), "a name without a pid is not rigd's to remove"
        assert log.status_dir.name.startswith(f"rigd-run-{os.getpid()}-next-")
        log.close()
        assert not log.status_dir.exists()
    finally:
        for path in (stale, live, unrelated):
            subprocess.run(["rm", "-rf", str(path)], check=False)
