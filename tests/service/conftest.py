"""The service tests' daemon: a real ``rigd serve`` per test (tests/service/daemon.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.daemon import Daemon, serving


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    with serving(tmp_path) as d:
        yield d
