"""The CLI ends as Unix tools do: a reader that leaves (``rigd inspect F | head``)
ends it quietly, and ``rigd serve`` refused a runtime directory others may
write says so in one line, leaving no lock file behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rigd.storage import RunWriter, StreamSpec
from tests.service.daemon import ROOT

pytestmark = pytest.mark.integration


def _rigd(*args: str, cwd: Path, **kwargs: object) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RIGD_ADDRESS": str(cwd / "none")}
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "rigd", *args], cwd=cwd, env=env, text=True, **kwargs
    )


def test_rigd_inspect_into_a_reader_that_left_ends_quietly(tmp_path: Path) -> None:
    run = tmp_path / "run.h5"
    with RunWriter(run, [StreamSpec("cam", (4, 4), np.dtype("uint16"))], run_id="r") as w:
        w.write("cam", np.ones((4, 4), np.uint16), 0, 0)
    # The reader has left before the first line: every write meets a closed pipe.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = _rigd("inspect", str(run), str(run), cwd=tmp_path, stdout=write_end, stderr=-1)
    finally:
        os.close(write_end)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGPIPE, err
    assert err == "", err  # no traceback, no "Exception ignored"


def test_rigd_serve_refuses_a_runtime_directory_others_may_write_in_one_line(
    tmp_path: Path,
) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    runtime.chmod(0o777)
    data = tmp_path / "data"
    config = tmp_path / "svc.yaml"
    settings = {
        "port": 0,
        "token_file": str(tmp_path / "token"),
        "data_dir": str(data),
        "runtime_dir": str(runtime),
    }
    config.write_text(json.dumps(settings))
    proc = _rigd("serve", "--config", str(config), cwd=tmp_path, stdout=-1, stderr=-1)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert "Traceback" not in err, err
    assert f"cannot use {runtime} as the runtime directory" in err
    assert "runtime_dir" in err  # the fix
    assert list(runtime.iterdir()) == []
    assert not (data / ".rigd-serve.lock").exists()
