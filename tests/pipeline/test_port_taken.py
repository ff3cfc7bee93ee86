"""A network actor whose port is taken says so in one line, with the fix
(``pipeline/_zmq_address.py``: one wording for ``ZmqSource`` and ``BridgeSender``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SENDER = """name: sending
actors:
  - {{name: camera, class: rigd.pipeline.SimulatedCamera, options: {{shape: [8, 8], n_frames: 4}}}}
  - name: sender
    class: rigd.pipeline.BridgeSender
    options: {{address: "tcp://127.0.0.1:{port}"}}
links:
  - {{link: camera.frames -> sender.frames, slots: 4}}
"""

SOURCE = """name: bound
actors:
  - name: source
    class: rigd.pipeline.ZmqSource
    options:
      {{address: "tcp://127.0.0.1:{port}", bind: true, shape: [4, 4], socket: pull, n_frames: 2}}
"""


@pytest.mark.parametrize(
    ("text", "pipeline", "actor"),
    [(SENDER, "sending", "BridgeSender"), (SOURCE, "bound", "ZmqSource")],
)
def test_an_actor_whose_port_is_taken_says_so_in_one_line(
    tmp_path: Path, text: str, pipeline: str, actor: str
) -> None:
    # Was: "could not start: zmq.error.ZMQError raised in ...__rigd_setup__" and the
    # actor's whole traceback, ending in ZMQError: Address already in use.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        path = tmp_path / "pipeline.yaml"
        path.write_text(text.format(port=port))
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
        f"rigd run: pipeline '{pipeline}' could not start: {actor} cannot bind "
        f"tcp://127.0.0.1:{port}: address already in use; give another port in its address "
        f"option, or stop what holds {port} (`ss -ltnp 'sport = :{port}'` names it)"
    )
    assert "Traceback" not in done.stderr
    assert "ZMQError" not in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipeline.yaml"]
