"""Names under contention: create, kill and get_if_exists from threads and tasks at once.

Issue 14: every name operation is atomic with the actor's lifecycle. Driver
threads and tasks (other processes) race on two names for hundreds of
rounds, killing now and then. Invariants:

- ``get_if_exists`` and ``get_actor`` never return an actor whose ``kill``
  had already returned when the lookup was made;
- a call on an actor a lookup returned fails only if that actor was killed
  (by someone, at some point): never because it was already ending;
- every task sees the driver's namespace (what the caller's context holds
  reaches what it starts), so tasks and threads share the names.
"""

from __future__ import annotations

import threading

import rigd
from rigd.exceptions import ActorDiedError

NAMES = ("stress-0", "stress-1")
THREADS = 3
ROUNDS = 150  # per thread: 450 lookups in the driver, plus the tasks' 80
KILL_EVERY = 10
TASKS = 2
TASK_ROUNDS = 40


@rigd.remote
class Lock:
    def ping(self) -> str:
        return "pong"


@rigd.remote
def contend(rounds: int) -> list[tuple[str, bool]]:
    seen = []
    for i in range(rounds):
        lock = Lock.options(name=NAMES[i % 2], get_if_exists=True).remote()
        try:
            rigd.get(lock.ping.remote(), timeout=30)
        except ActorDiedError:
            seen.append((lock._actor_id, False))
        else:
            seen.append((lock._actor_id, True))
    return seen


def test_names_stay_atomic_with_the_lifecycle_under_contention() -> None:
    rigd.init(namespace="stress")
    killing: set[str] = set()  # kill() was called (added before the call)
    killed: set[str] = set()  # kill() had returned
    guard = threading.Lock()
    failures: list[str] = []
    tasks = [contend.remote(TASK_ROUNDS) for _ in range(TASKS)]

    def driver(thread_no: int) -> None:
        for i in range(ROUNDS):
            name = NAMES[(i + thread_no) % 2]
            with guard:
                dead_before = set(killed)
            if i % 3 == 2:
                try:
                    lock = rigd.get_actor(name)
                except ValueError:
                    continue  # free right now: fine
            else:
                lock = Lock.options(name=name, get_if_exists=True).remote()
            actor_id = lock._actor_id
            if actor_id in dead_before:
                failures.append(f"a lookup of {name!r} returned killed actor {actor_id}")
            try:
                rigd.get(lock.ping.remote(), timeout=30)
            except ActorDiedError:
                with guard:
                    if actor_id not in killing:
                        failures.append(f"actor {actor_id} died but nobody killed it")
            if i % KILL_EVERY == thread_no:
                with guard:
                    killing.add(actor_id)
                rigd.kill(lock)
                with guard:
                    killed.add(actor_id)

    threads = [threading.Thread(target=driver, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    seen: list[tuple[str, bool]] = [s for result in rigd.get(tasks, timeout=120) for s in result]

    assert not any(t.is_alive() for t in threads)
    assert failures == []
    died = {actor_id for actor_id, ok in seen if not ok}
    assert died <= killing, f"tasks saw actors die that nobody killed: {died - killing}"
    assert len(seen) == TASKS * TASK_ROUNDS
    living = [a.name for a in rigd.state.list_actors() if a.state != "dead" and a.name]
    assert sorted(living) == sorted(set(living)), "two living actors hold one name"
