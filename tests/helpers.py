"""Helpers shared by the tests: bounded waits and leak checks."""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SHM = "/dev/shm"


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Wait until ``condition()`` holds; fail the test after ``timeout`` seconds.

    Polls every 5 ms: this waits on a condition, it does not sleep a guess.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(0.005)


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` is a live (not zombie) process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False  # gone, possibly between the open and the read
    return state != "Z"


def child_pids(pid: int | None = None) -> list[int]:
    """Live rigd worker processes among the children of ``pid`` (this process by default).

    Other children (multiprocessing's resource tracker, a test's own
    subprocesses) are not rigd's to clean up.
    """
    pid = os.getpid() if pid is None else pid
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[1]) != pid or fields[0] == "Z":
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if b"rigd.actors._worker" in cmdline:
            out.append(int(entry))
    return out


def session_files(pid: int | None = None) -> list[str]:
    """Socket directories and segments of sessions owned by ``pid``."""
    pid = os.getpid() if pid is None else pid
    prefix = f"rigd-{pid}-"
    found = [os.path.join(SHM, n) for n in os.listdir(SHM) if n.startswith(prefix)]
    tmp = tempfile.gettempdir()
    found += [os.path.join(tmp, n) for n in os.listdir(tmp) if n.startswith(prefix)]
    return found


def open_gate(path: str) -> None:
    """Release a call blocked reading the FIFO ``path`` (blocks until it reads).

    Tests hold calls at a FIFO instead of sleeping: the call reads one byte,
    the test writes it, and nothing polls.
    """
    fd = os.open(path, os.O_WRONLY)
    os.write(fd, b"\0")
    os.close(fd)


@contextlib.contextmanager
def small_tmpfs(directory: Path, size: str = "20m") -> Iterator[Path]:
    """``directory`` made and mounted as a tmpfs of ``size`` for a disk-full case
    (needs root and mount: the test is skipped without them); unmounted after."""
    directory.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the disk-full case: {result.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)
