"""``rigd reprocess --address``'s refusals before anything runs: exit 2 with the cause,
no traceback, and no ``--out`` left behind (a pipeline no node can hold is in
``test_reprocess_ray``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.daemon import ROOT
from tests.service.test_reprocess import PIPELINE, run_file


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A tcp port bound here but not listening: a connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def _reprocess(
    tmp_path: Path, address: str, *, prelude: str = ""
) -> subprocess.CompletedProcess[str]:
    pipeline = tmp_path / "rowsums.yaml"
    pipeline.write_text(PIPELINE)
    run_file(tmp_path / "run.h5", 0, 3)
    argv = ["rigd", "reprocess", str(pipeline), "run.h5", "--address", address, "--out", "out"]
    code = f"{prelude}import sys; from rigd.service._cli import main; sys.argv = {argv!r}; main()"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )


def test_reprocess_with_an_address_and_no_ray_says_what_to_install_with_exit_2(
    tmp_path: Path,
) -> None:
    # Was: a traceback (ModuleNotFoundError), exit 1. Ray made unimportable, as
    # where it is not installed.
    done = _reprocess(
        tmp_path, "ray:127.0.0.1:6379", prelude="import sys; sys.modules['ray'] = None; "
    )

    assert done.returncode == 2, done.stderr[-3000:]
    assert "needs Ray" in done.stderr
    assert "pip install 'rigd[cluster]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "out").exists()


def test_reprocess_with_an_address_where_no_ray_listens_leaves_no_out_directory(
    tmp_path: Path, closed_port: int
) -> None:
    pytest.importorskip("ray", reason="Ray is the test extra's (pip install 'rigd[cluster]')")
    address = f"ray:127.0.0.1:{closed_port}"

    done = _reprocess(tmp_path, address)

    assert done.returncode == 2, done.stderr[-3000:]
    assert f"no Ray cluster at {address}" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()  # was: made, and left empty
