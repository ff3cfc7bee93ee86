"""Worker processes carry their actor's name where top and pgrep look (``comm``), as
Ray's carry ``ray::Class``; their command line stays as tools find it."""

from __future__ import annotations

import os
from pathlib import Path

import rigd


@rigd.remote
class Camera:
    def pid(self) -> int:
        return os.getpid()


@rigd.remote
def worker_pid() -> int:
    return os.getpid()


def _comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def test_an_actor_process_is_named_after_its_name_or_its_class() -> None:
    named = Camera.options(name="cam0").remote()
    plain = Camera.remote()
    long = Camera.options(name="a-rather-long-camera-name").remote()
    pids = rigd.get([a.pid.remote() for a in (named, plain, long)], timeout=60)

    assert [_comm(pid) for pid in pids] == ["rigd:cam0", "rigd:Camera", "rigd:a-rather-l"]
    cmdline = Path(f"/proc/{pids[0]}/cmdline").read_bytes().split(b"\0")
    assert b"rigd.actors._worker" in cmdline


def test_a_task_worker_is_named_as_one() -> None:
    assert _comm(rigd.get(worker_pid.remote(), timeout=60)) == "rigd:task"
