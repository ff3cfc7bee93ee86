"""A module whose import blocks until the test opens its gate (a FIFO named by
``RIGD_TEST_GATE``): a request the daemon cannot finish."""

from __future__ import annotations

import os

with open(os.environ["RIGD_TEST_GATE"], "rb") as _gate:
    _gate.read(1)
