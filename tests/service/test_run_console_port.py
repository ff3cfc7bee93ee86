"""``rigd run --console PORT`` with the port taken: one line naming ``rigd run``,
``--console`` and the fix, exit 2, before any console address is printed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.service.daemon import COUNTER, ROOT


def test_rigd_run_with_its_console_port_taken_says_so_before_claiming_the_console(
    tmp_path: Path,
) -> None:
    pipeline = tmp_path / "short.yaml"
    pipeline.write_text(COUNTER.replace("fps: 400", "fps: 400, n_frames: 10"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RIGD_ADDRESS": str(tmp_path / "none")}
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "rigd", "run", "--console", str(port), str(pipeline)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"rigd run: --console {port}: cannot listen on 127.0.0.1:{port}")
    assert "address already in use" in done.stderr
    assert "give another port to --console" in done.stderr
    assert "console on" not in done.stderr
    assert "rigd serve" not in done.stderr
    assert "service config" not in done.stderr
    assert len(done.stderr.splitlines()) == 1
    # Nothing started: no data directory, no journal, no run file.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["short.yaml"]
