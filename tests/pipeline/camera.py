"""Aravis's GigE Vision camera simulator, on loopback, for the GenICam tests."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers import wait_until

SIMULATOR = "arv-fake-gv-camera-0.8"
#: The simulator's device id (Aravis: vendor-model-serial).
DEVICE_ID = "Aravis-Fake-GV01"
#: GVCP's port is fixed (3956), so one simulator on 127.0.0.1 at a time on this
#: machine: two test runs at once (a CI clone beside a work tree) would each
#: talk to the other's camera. This lock makes the second wait its turn.
MACHINE_LOCK = "/tmp/rigd-test-gv-camera.lock"


class Simulator:
    """One ``arv-fake-gv-camera-0.8 -i 127.0.0.1`` process: start, kill, start again."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None
        self.lock_fd: int | None = None

    def _take_machine_lock(self) -> None:
        if self.lock_fd is not None:
            return
        fd = os.open(MACHINE_LOCK, os.O_RDWR | os.O_CREAT, 0o666)

        def taken() -> bool:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        try:
            wait_until(taken, timeout=900, what="another test run's simulated camera to stop")
        except BaseException:
            os.close(fd)
            raise
        self.lock_fd = fd

    def _release_machine_lock(self) -> None:
        """Called by ``close``: a test that kills and restarts keeps its turn."""
        fd, self.lock_fd = self.lock_fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock

    def start(self, lost_per_thousand: int = 0) -> None:
        """Start the simulator; ``lost_per_thousand`` GVSP packets are never sent
        (its ``--gvsp-lost-ratio``), so the driver has buffers it cannot fill."""
        from rigd.pipeline import list_cameras

        extra = ["-r", str(lost_per_thousand)] if lost_per_thousand else []
        self._take_machine_lock()
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

    def close(self) -> None:
        """Kill the simulator and let another test run start its own."""
        self.kill()
        self._release_machine_lock()


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    """A running simulated camera; killed (no process left) after the test."""
    if shutil.which(SIMULATOR) is None:
        pytest.skip(
            f"{SIMULATOR} is not installed (apt-get install aravis-tools gir1.2-aravis-0.8; "
            ".ci/run installs them)"
        )
    sim = Simulator()
    try:
        sim.start()
        yield sim
    finally:
        sim.close()
