"""A `BridgeSender` whose port is taken says so in one line, worded as `ZmqSource`'s
(``_zmq_address``), and leaves nothing behind."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_bridge_sender_whose_port_is_taken_says_so_in_one_line(tmp_path: Path) -> None:
    # Was: "could not start: zmq.error.ZMQError raised in BridgeSender.__rigd_setup__"
    # and a full traceback.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        path = tmp_path / "pipeline.yaml"
        path.write_text(
            "name: sending\nactors:\n  - name: camera\n    class: rigd.pipeline.SimulatedCamera\n"
            "    options: {shape: [8, 8], n_frames: 4}\n  - name: sender\n"
            f'    class: rigd.pipeline.BridgeSender\n    options: {{address: "tcp://127.0.0.1:{port}"}}\n'
            "links:\n  - {link: camera.frames -> sender.frames, slots: 4}\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "rigd", "run", str(path)],
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if "could not start" in x]
    assert line == (
        f"rigd run: pipeline 'sending' could not start: BridgeSender cannot bind "
        f"tcp://127.0.0.1:{port}: address already in use; give another port in its address "
        f"option, or stop what holds {port} (`ss -ltnp 'sport = :{port}'` names it)"
    )
    assert "Traceback" not in done.stderr
    assert "ZMQError" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.yaml"]
