"""Every test gets a fresh embedded runtime and must leave nothing behind."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterator

import pytest

import rigd
from tests.helpers import child_pids, session_files, wait_until


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    """After each test: shut rigd down; no worker, socket file or segment may remain."""
    yield
    rigd.shutdown()
    wait_until(lambda: not child_pids(), timeout=10, what="worker processes to exit")
    assert session_files() == []


@pytest.fixture
def gate(tmp_path: pathlib.Path) -> str:
    """A FIFO a remote call can block on until the test calls ``open_gate``."""
    path = str(tmp_path / "gate")
    os.mkfifo(path)
    return path
