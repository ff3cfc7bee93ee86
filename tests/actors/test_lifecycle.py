"""When actors end: handles released, kills, crashes, dead creators, shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

import rigd
from rigd.exceptions import ActorDiedError
from tests.helpers import open_gate, pid_alive, session_files, wait_until


@rigd.remote
class Worker:
    def pid(self):
        return os.getpid()

    def ping(self):
        return "pong"

    def hold(self, handle):
        self.held = handle
        return rigd.get(handle.pid.remote())

    def drop(self):
        del self.held

    def spawn(self, detached=False):
        options = {"name": "child-detached", "lifetime": "detached"} if detached else {}
        self.child = Worker.options(**options).remote()
        return self.child

    def sleep_forever(self, fifo):
        with open(fifo, "rb") as f:
            f.read(1)


def _pid(handle: rigd.actor.ActorHandle) -> int:
    return rigd.get(handle.pid.remote())


def test_last_handle_released_in_every_process_ends_the_actor() -> None:
    holder = Worker.remote()
    held = Worker.remote()
    held_pid = rigd.get(holder.hold.remote(held))

    del held  # another process still holds a handle: the actor lives

    assert rigd.get(holder.ping.remote()) == "pong"
    assert pid_alive(held_pid)
    rigd.get(holder.drop.remote())
    wait_until(lambda: not pid_alive(held_pid), what="the actor to end once no handle is left")


def test_a_handle_returned_from_a_method_is_usable_by_the_caller() -> None:
    parent = Worker.remote()

    child = rigd.get(parent.spawn.remote())

    assert rigd.get(child.ping.remote()) == "pong"
    assert _pid(child) != _pid(parent)


def test_sigkill_from_outside_fails_the_call_in_flight_and_later_calls(tmp_path) -> None:
    fifo = str(tmp_path / "never")
    os.mkfifo(fifo)
    actor = Worker.remote()
    pid = _pid(actor)
    in_flight = actor.sleep_forever.remote(fifo)

    os.kill(pid, signal.SIGKILL)

    with pytest.raises(ActorDiedError, match=rf"pid {pid}\) was killed by signal SIGKILL"):
        rigd.get(in_flight, timeout=10)
    with pytest.raises(ActorDiedError, match="SIGKILL"):
        rigd.get(actor.ping.remote(), timeout=10)


def test_kill_fails_pending_calls(tmp_path) -> None:
    fifo = str(tmp_path / "never")
    os.mkfifo(fifo)
    actor = Worker.remote()
    blocked = actor.sleep_forever.remote(fifo)
    queued = [actor.ping.remote() for _ in range(3)]

    rigd.kill(actor)

    for ref in [blocked, *queued]:
        with pytest.raises(ActorDiedError, match=r"killed with rigd\.kill\(\)"):
            rigd.get(ref, timeout=10)


def test_kill_of_something_not_a_handle_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="takes an actor handle"):
        rigd.kill("camera")  # type: ignore[arg-type]


def test_an_actor_dies_with_the_actor_that_created_it() -> None:
    parent = Worker.remote()
    child = rigd.get(parent.spawn.remote())
    child_pid = _pid(child)

    rigd.kill(parent)

    wait_until(lambda: not pid_alive(child_pid), what="the child to die with its creator")
    with pytest.raises(ActorDiedError, match="the process that created it died"):
        rigd.get(child.ping.remote(), timeout=10)


def test_a_detached_actor_outlives_the_actor_that_created_it() -> None:
    parent = Worker.remote()
    child = rigd.get(parent.spawn.remote(detached=True))

    rigd.kill(parent)
    with pytest.raises(ActorDiedError):
        rigd.get(parent.ping.remote(), timeout=10)

    assert rigd.get(rigd.get_actor("child-detached").ping.remote()) == "pong"
    assert rigd.get(child.ping.remote()) == "pong"


def test_an_exception_in_the_shutdown_hook_is_logged_not_raised(
    capfd: pytest.CaptureFixture[str],
) -> None:
    @rigd.remote
    class Faulty:
        def pid(self):
            return os.getpid()

        def __rigd_shutdown__(self):
            raise OSError("disk gone")

    actor = Faulty.remote()
    pid = _pid(actor)

    assert rigd.get(actor.__rigd_terminate__.remote(), timeout=10) is None

    wait_until(lambda: not pid_alive(pid), what="the actor to exit")
    assert "__rigd_shutdown__ raised; the actor exits anyway" in capfd.readouterr().err


def test_exit_actor_outside_an_actor_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"^exit_actor\(\) must be called from inside an actor"):
        rigd.actor.exit_actor()


DRIVER = textwrap.dedent("""
    import os, sys
    import rigd

    @rigd.remote
    class A:
        def pid(self):
            return os.getpid()

    a = A.remote()
    b = A.options(name="kept", lifetime="detached").remote()
    # A ring the driver made (a pipeline's, as a cluster's node supervisor makes them).
    from rigd.storage import FrameRing
    ring = FrameRing.create("orphaned", (4,), "uint8", slot_count=2)
    print(rigd.get(a.pid.remote()), rigd.get(b.pid.remote()), flush=True)
    sys.stdin.read()
""")


def test_actors_and_session_files_and_rings_go_when_the_driver_is_sigkilled() -> None:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert driver.stdout is not None
    pids = [int(p) for p in driver.stdout.readline().split()]
    assert len(pids) == 2
    assert all(pid_alive(p) for p in pids)

    driver.kill()
    driver.wait()

    wait_until(lambda: not any(pid_alive(p) for p in pids), what="the actors to die")
    wait_until(lambda: session_files(driver.pid) == [], what="the session's files to go")
    driver.stdin.close()  # type: ignore[union-attr]
    driver.stdout.close()


def test_shutdown_leaves_no_process_socket_or_segment() -> None:
    import numpy as np

    @rigd.remote
    def task(frame):
        return frame * 2

    actors = [Worker.remote() for _ in range(3)]
    pids = [_pid(a) for a in actors]
    frame = np.ones((1024, 1024), dtype=np.uint16)
    assert int(rigd.get(task.remote(frame)).sum()) == 2 * frame.size
    assert session_files() != []

    rigd.shutdown()

    assert not rigd.is_initialized()
    assert not any(pid_alive(p) for p in pids)
    assert session_files() == []


def test_any_call_before_init_starts_an_embedded_runtime() -> None:
    assert not rigd.is_initialized()

    actor = Worker.remote()

    assert rigd.is_initialized()
    assert rigd.get(actor.ping.remote()) == "pong"


def test_init_twice_is_an_error_unless_told_to_ignore_it() -> None:
    rigd.init()

    with pytest.raises(RuntimeError, match=r"already called.*ignore_reinit_error=True"):
        rigd.init()
    assert rigd.init(ignore_reinit_error=True)["namespace"].startswith("anonymous-")


def test_init_with_address_auto_and_no_daemon_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Where no daemon is, even while the user's own `rigd serve` runs.
    monkeypatch.setenv("RIGD_ADDRESS", str(tmp_path))
    with pytest.raises(ConnectionError, match=r"none is running.*or call rigd\.init\(\)"):
        rigd.init(address="auto")


def test_init_removes_what_a_crashed_session_left() -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    leftover_dir = tempfile.mkdtemp(prefix=f"rigd-{dead_pid}-abcdef-")
    leftover_shm = f"/dev/shm/rigd-{dead_pid}-abcdef-x-m1-1"
    open(leftover_shm, "wb").close()

    rigd.init()

    assert not os.path.exists(leftover_dir)
    assert not os.path.exists(leftover_shm)


def test_an_actor_asking_for_busy_cpus_waits_until_they_are_free() -> None:
    rigd.init(num_cpus=2)
    big = Worker.options(num_cpus=2).remote()
    assert rigd.get(big.ping.remote()) == "pong"

    waiting = Worker.options(num_cpus=1).remote()
    ref = waiting.ping.remote()

    assert rigd.wait([ref], timeout=0.2) == ([], [ref])
    assert [a.state for a in rigd.state.list_actors(state="pending")] == ["pending"]
    rigd.kill(big)
    assert rigd.get(ref, timeout=10) == "pong"


@rigd.remote
class SlowToStart:
    def __init__(self, gate: str) -> None:
        with open(gate, "rb") as f:  # held here until the test opens the gate
            f.read(1)

    def work(self) -> str:
        return "done"


def test_a_call_made_on_a_handle_dropped_while_the_actor_starts_still_runs(gate: str) -> None:
    # The handle is gone at once; the call waits for the actor to start.
    ref = SlowToStart.remote(gate).work.remote()
    open_gate(gate)
    assert rigd.get(ref, timeout=60) == "done"
