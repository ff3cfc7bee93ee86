"""An actor that ends for good: the head is told not to restart it.

A pipeline actor gives up at once on a fatal error (``add_fatal_error``:
a recording stopped by a full disk). Its process then exits, and a crash
would be restarted by its ``max_restarts`` policy, again and again until the
restarts are spent, each restart failing the same way. So before it exits,
the actor tells the head, as ``rigd.actor.exit_actor()`` does, that it ends
on purpose (``Exiting``, kind ``exit_actor``): the head records it dead with
the reason, and restarts nothing (Ray's rule: an actor that exits on purpose
is not restarted).
"""

from __future__ import annotations

import contextlib
import logging

from rigd.actors import _session
from rigd.actors._messages import ExitKind
from rigd.actors._to_head import Exiting

__all__ = ["end_without_restart"]

log = logging.getLogger("rigd.actor")


def end_without_restart(detail: str) -> None:
    """Tell the head this worker's actor ends for good, and why (``detail``).

    Call it just before the process exits. Outside a worker of rigd's own
    runtime (an actor run inline, or on Ray) it does nothing.
    """
    runtime = _session._runtime
    if runtime is None or not _session.in_worker():
        return
    with contextlib.suppress(Exception):  # the head may be gone: exiting is all that is left
        runtime.send_to_head(Exiting(ExitKind.EXIT_ACTOR.value, detail))
        # The detail (its error) was logged as it happened, and is the death reason.
        log.info("told the head not to restart this actor")
