"""Single-machine stand-ins for the helpers Ray's tests import (own code)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any

import rigd


class _Refused:
    def __init__(self, name: str) -> None:
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from ray import OutOfScope

        if self.name in _INTERNAL:
            raise OutOfScope(f"Ray internals: test helper {self.name}")
        if self.name in _CLUSTER:
            raise OutOfScope(f"multi-node cluster: test helper {self.name}")
        # A helper of single-machine behaviour the runner lacks: counted as a
        # failure, not hidden (a second driver joining this session, say:
        # rigd shares a session between drivers through its daemon, which
        # these fixtures do not start).
        raise NotImplementedError(f"the runner has no single-machine {self.name}")


#: Helpers that read Ray's internals (the GCS pubsub channels).
_INTERNAL = {"init_error_pubsub", "init_log_pubsub", "get_error_message", "get_log_message"}
#: Helpers about the nodes of a cluster.
_CLUSTER = {"get_other_nodes", "get_non_head_nodes"}


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    return _Refused(name)


def wait_for_condition(
    condition_predictor: Any, timeout: float = 10, retry_interval_ms: float = 100, **kwargs: Any
) -> None:
    """Wait until the predicate holds (Ray's helper, same signature)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if condition_predictor(**kwargs):
                return
        except Exception as exc:
            if type(exc).__name__ == "OutOfScope":
                raise
            last = exc
        time.sleep(retry_interval_ms / 1000)
    raise RuntimeError(f"the condition was not met within {timeout} s") from last


def wait_for_pid_to_exit(pid: int, timeout: float = 20) -> None:
    """Wait until ``pid`` is gone."""

    def gone() -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True

    wait_for_condition(gone, timeout=timeout, retry_interval_ms=10)


def run_string_as_driver(driver_script: str, env: Any = None, encode: str = "utf-8") -> str:
    """Run ``driver_script`` as another driver process (Ray's helper, same signature).

    It joins this session with ``ray.init(address=info["address"])``, which
    rigd takes as Ray does. Raises ``CalledProcessError`` if it fails.
    """
    proc = subprocess.Popen(
        [sys.executable, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )
    output, _ = proc.communicate(driver_script.encode("utf-8"), timeout=120)
    if proc.returncode:
        print(output.decode(encode, "replace"))
        raise subprocess.CalledProcessError(proc.returncode, proc.args, output)
    return str(output.decode(encode))


def run_string_as_driver_nonblocking(driver_script: str, env: Any = None) -> Any:
    """Start ``driver_script`` as another driver process; return its ``Popen``."""
    proc = subprocess.Popen(
        [sys.executable, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(driver_script.encode("utf-8"))
    proc.stdin.close()
    return proc


def generate_system_config_map(**kwargs: Any) -> dict[str, Any]:
    """Ray's fixture parameter builder (used at collection; its fixtures are out of scope)."""
    return {"_system_config": kwargs}


def client_test_enabled() -> bool:
    return False


@rigd.remote(num_cpus=0)
class SignalActor:
    """An event other actors and tasks wait on (Ray's test helper)."""

    def __init__(self) -> None:
        self.ready_event = asyncio.Event()
        self.num_waiters = 0

    def send(self, clear: bool = False) -> None:
        self.ready_event.set()
        if clear:
            self.ready_event.clear()

    async def wait(self, should_wait: bool = True) -> None:
        if should_wait:
            self.num_waiters += 1
            await self.ready_event.wait()
            self.num_waiters -= 1

    async def cur_num_waiters(self) -> int:
        return self.num_waiters


@rigd.remote(num_cpus=0)
class Semaphore:
    """An asyncio semaphore as an actor (Ray's test helper)."""

    def __init__(self, value: int = 1) -> None:
        self._sema = asyncio.Semaphore(value=value)

    async def acquire(self) -> None:
        await self._sema.acquire()

    async def release(self) -> None:
        self._sema.release()

    async def locked(self) -> bool:
        return self._sema.locked()


def create_remote_signal_actor(ray: Any) -> Any:
    return SignalActor


def kill_actor_and_wait_for_failure(actor: Any, timeout: float = 10, **kwargs: Any) -> None:
    """End the actor (its next call fails with ActorDiedError)."""
    rigd.kill(actor)
