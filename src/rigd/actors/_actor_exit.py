"""The end of an actor's process: tell the head, run its hook, answer, exit.

An actor ends when the head asks (``TERMINATE``), when its handles are gone
(a drain), or when a method ends it (``exit_actor``, ``sys.exit``). Whichever
it is, ``ActorServer`` (``_actor_server``) ends it here, on its main thread:
the head hears first (so the name is free at once), the listener closes,
the executor stops, ``__rigd_shutdown__`` runs (bounded by
``SHUTDOWN_HOOK_TIMEOUT_S``), the call that ended it gets its answer, and
the process exits with ``os._exit`` after the ``atexit`` functions.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, NoReturn

from rigd._exceptions import ActorDiedError
from rigd.actors._call_messages import reply_ok
from rigd.actors._messages import ExitKind
from rigd.actors._replies import error_reply
from rigd.actors._to_head import Exiting
from rigd.actors._wire import release_send_pools

if TYPE_CHECKING:
    from rigd.actors._actor_server import ActorServer

__all__ = ["SHUTDOWN_HOOK_TIMEOUT_S", "close_and_exit", "end_actor", "why_ended"]

log = logging.getLogger("rigd.worker")

# __rigd_shutdown__ may take this long before the process exits anyway.
SHUTDOWN_HOOK_TIMEOUT_S = 30.0


def end_actor(server: ActorServer) -> NoReturn:
    """End the actor ``server`` serves: tell the head, hook, reply, close, exit.

    ``server.exit_request`` says how it ends and which call, if any, ended it.
    """
    assert server.exit_request is not None
    kind, conn, call_id = server.exit_request
    # First: the head frees the actor's name at once, so no get_actor or
    # get_if_exists hands out this actor while its hook runs.
    server.runtime.send_to_head(Exiting(kind.value, server.exit_detail))
    if server.loop is not None:
        server.loop.remove_reader(server.listener.fileno())
    else:
        server.selector.unregister(server.listener)
    server.listener.close()
    os.unlink(server.path)
    if server.executor is not None:
        server.executor.shutdown(SHUTDOWN_HOOK_TIMEOUT_S)
    _run_shutdown_hook(server.instance, server.class_name)
    if conn is not None and call_id is not None:
        name = server.class_name
        if kind is ExitKind.EXIT_ACTOR:
            why = server.exit_detail or "exited by calling rigd.actor.exit_actor()"
            error = ActorDiedError(f"The actor {name} ({server.actor_id}) {why}")
            server.replies.send(
                conn,
                error_reply(call_id, f"{name}.exit_actor", error, server.runtime.shm_prefix),
            )
        else:
            server.replies.send(conn, reply_ok(call_id, None))
    close_and_exit(server.connections, 0, run_atexit=True)


def close_and_exit(connections: Iterable[socket.socket], code: int, run_atexit: bool) -> NoReturn:
    """Close the callers' sockets, flush, and end the process with ``code``."""
    for conn in list(connections):
        conn.close()
    if run_atexit:
        atexit._run_exitfuncs()
    release_send_pools()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def why_ended(exc: BaseException) -> str:
    """Why an actor's own code ended it, in words, for ``ActorDiedError``."""
    if isinstance(exc, SystemExit):
        return f"exited: a method raised SystemExit (sys.exit({exc.code!r}))"
    if isinstance(exc, KeyboardInterrupt):
        return "exited: a method raised KeyboardInterrupt"
    return f"exited: a method raised {type(exc).__name__}: {exc}"


def _run_shutdown_hook(instance: object, class_name: str) -> None:
    hook = getattr(instance, "__rigd_shutdown__", None)
    if hook is None:
        return

    def run() -> None:
        try:
            hook()
        except Exception:
            log.exception("%s.__rigd_shutdown__ raised; the actor exits anyway", class_name)

    thread = threading.Thread(target=run, name="rigd-shutdown-hook", daemon=True)
    thread.start()
    thread.join(SHUTDOWN_HOOK_TIMEOUT_S)
    if thread.is_alive():
        log.error(
            "%s.__rigd_shutdown__ did not return within %.0f s; the actor exits anyway",
            class_name,
            SHUTDOWN_HOOK_TIMEOUT_S,
        )
