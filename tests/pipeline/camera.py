"""Aravis's GigE Vision camera simulator, on loopback, for the GenICam tests."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers import wait_until

SIMULATOR = "arv-fake-gv-camera-0.8"
#: The simulator's device id (Aravis: vendor-model-serial).
DEVICE_ID = "Aravis-Fake-GV01"


class Simulator:
    """One ``arv-fake-gv-camera-0.8 -i 127.0.0.1`` process: start, kill, start again."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, lost_per_thousand: int = 0) -> None:
        """Start the simulator; ``lost_per_thousand`` GVSP packets are never sent
        (its ``--gvsp-lost-ratio``), so the driver has buffers it cannot fill."""
        from rigd.pipeline import list_cameras

        extra = ["-r", str(lost_per_thousand)] if lost_per_thousand else []
        self.process = subprocess.Popen(
            [SIMULATOR, "-i", "127.0.0.1", *extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: any(c.id == DEVICE_ID for c in list_cameras()),
            timeout=20,
            what="the simulated camera to answer discovery",
        )

    def kill(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A running simulated camera; killed (no process left) after the test."""
    if shutil.which(SIMULATOR) is None:
        pytest.skip(
            f"{SIMULATOR} is not installed (apt-get install aravis-tools gir1.2-aravis-0.8; "
            ".ci/run installs them)"
        )
    sim = Simulator()
    sim.start()
    try:
        yield sim
    finally:
        sim.kill()
