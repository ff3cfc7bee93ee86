"""The end of a session's workers, when the head stops (``Head.stop``).

Every actor and worker is told to end promptly (``TERMINATE``, with
``ExitKind.SHUTDOWN``), so each actor's ``__rigd_shutdown__`` runs; the head
keeps serving its sockets meanwhile, since a worker still starting must get
its backlog (its job, then ``TERMINATE``) to end cleanly. A worker still
running ``SHUTDOWN_GRACE_S`` later is killed. Then every actor is dead, with
the reason "shutdown" for anyone who asks. Closing the head's own sockets
and segments is the head's (``_head``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from rigd.actors._actor_table import ActorTable
from rigd.actors._from_head import Terminate
from rigd.actors._head_records import ActorState, Worker, death_reason
from rigd.actors._messages import ExitKind, TerminateMode
from rigd.actors._protocol import encode
from rigd.actors._worker_pool import WorkerPool

__all__ = ["SHUTDOWN_GRACE_S", "end_workers"]

# The head's logger: these lines keep the name they had there.
log = logging.getLogger("rigd.actors._head")

SHUTDOWN_GRACE_S = 5.0


def end_workers(
    actors: ActorTable,
    pool: WorkerPool,
    task_workers: Iterable[Worker],
    serve: Callable[[float], None],
) -> None:
    """End every worker of the session; block until each has exited.

    Args:
        actors: the session's actors; each is dead on return.
        pool: the session's workers.
        task_workers: the workers running (or waiting for) tasks.
        serve: serves the head's sockets for up to the given seconds.
    """
    shutdown = encode(Terminate(TerminateMode.PROMPT.value, ExitKind.SHUTDOWN.value))
    for actor in actors:
        if actor.state in (ActorState.STARTING, ActorState.ALIVE) and actor.worker:
            if actor.worker.exit_kind is None:
                actor.worker.exit_kind = ExitKind.SHUTDOWN
            pool.send(actor.worker, shutdown)
    for worker in [*task_workers, *pool.spares()]:
        pool.send(worker, shutdown)
    # Keep serving while workers end: one still starting must get its
    # backlog (its job, then TERMINATE) to end cleanly.
    deadline = time.monotonic() + SHUTDOWN_GRACE_S
    while time.monotonic() < deadline and any(w.popen.poll() is None for w in pool.all()):
        serve(0.01)
    for worker in pool.all():
        if worker.popen.poll() is None:
            log.warning(
                "worker %s (pid %d) did not end within %.0f s of shutdown; killed",
                worker.worker_id,
                worker.popen.pid,
                SHUTDOWN_GRACE_S,
            )
            worker.popen.kill()
        worker.popen.wait()
    for actor in actors:
        actors.dead(actor, death_reason(actor, ExitKind.SHUTDOWN, ""))
