"""The head's actor table: every actor of a session, its life and its restarts.

An actor is PENDING until its CPUs and GPUs are free, STARTING while its
worker runs the constructor, ALIVE once it listens, and DEAD for good
(killed, crashed past ``max_restarts``, unreferenced, or its creator died).
A crashed actor with restarts left starts again in a new process, with its
constructor's original arguments. Its name (``NameRegistry``) is freed as
soon as it is ending, and it is collected when ``HandleCounts`` says no
process references it. Who waits for its address or its end is answered
as its state moves (``_actor_waits``).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from rigd._exceptions import ResourceUnavailableError
from rigd.actors._actor_waits import (
    Reply,
    answer_address,
    answer_dead,
    answer_death,
    answer_ready,
    answer_restarted,
)
from rigd.actors._bundles import group_of
from rigd.actors._events import TaskLog, TaskState
from rigd.actors._from_head import Terminate
from rigd.actors._handle_counts import HandleCounts
from rigd.actors._head_records import ActorRecord, ActorState, Peer, Worker, death_reason
from rigd.actors._messages import ExitKind, TerminateMode
from rigd.actors._names import NameRegistry, name_taken
from rigd.actors._options import ActorOptions
from rigd.actors._protocol import encode
from rigd.actors._resources import Resources
from rigd.actors._started import table_path
from rigd.actors._to_head import CreateActor
from rigd.actors._worker_pool import WorkerPool

if TYPE_CHECKING:
    from rigd.actors._placement_groups import PlacementGroups

__all__ = ["MAX_DEAD_ACTORS", "PROMPT_KILL_AFTER_S", "ActorTable"]

log = logging.getLogger(__name__)

# How long a prompt termination (shutdown, a dead creator) may take before
# the process is killed: the call in progress plus __rigd_shutdown__.
PROMPT_KILL_AFTER_S = 35.0
# Dead actors the head remembers (their death reason, for callers that ask
# late, and for list_actors); older ones are forgotten, so a daemon that
# creates and ends actors for months holds bounded memory. Ray keeps a
# similar cap of destroyed actors.
MAX_DEAD_ACTORS = 1000


class ActorTable:
    """Every actor the head knows, with its lifecycle and restarts.

    Args:
        session_dir: where the actors' started-call tables live.
        pool: the workers actors run in.
        resources: the CPUs and GPUs actors reserve.
        reply: answers a request.
        after: runs an action after a delay, on the head's thread.
        task_log: where restarts are recorded.
        on_freed: called when an actor frees CPUs or GPUs (tasks may start).
        stopping: whether the session is ending (no restarts then).
    """

    def __init__(
        self,
        session_dir: str,
        pool: WorkerPool,
        resources: Resources,
        reply: Reply,
        after: Callable[[float, Callable[[], None]], None],
        task_log: TaskLog,
        on_freed: Callable[[], None],
        stopping: Callable[[], bool],
    ) -> None:
        self._session_dir = session_dir
        self._pool = pool
        self._resources = resources
        self._reply = reply
        self._after = after
        self._task_log = task_log
        self._on_freed = on_freed
        self._stopping = stopping
        self.names = NameRegistry()
        self.handles = HandleCounts()
        self._actors: dict[str, ActorRecord] = {}
        self._pending: collections.deque[ActorRecord] = collections.deque()
        self._dead: collections.deque[str] = collections.deque()
        #: The placement groups actors may be placed in (set by the head).
        self.groups: PlacementGroups | None = None

    def __iter__(self) -> Iterator[ActorRecord]:
        return iter(list(self._actors.values()))

    def get(self, actor_id: str) -> ActorRecord | None:
        """The actor ``actor_id``, or None if the head does not know it (any more)."""
        return self._actors.get(actor_id)

    def handle_info(self, actor: ActorRecord) -> tuple[Any, ...]:
        """What a process needs to build a handle: id, class name, schema, a token."""
        return (actor.actor_id, actor.class_name, actor.methods, self.handles.issue(actor.actor_id))

    # -- creation and start --------------------------------------------------------

    def create(self, peer: Peer, req_id: int, request: CreateActor) -> None:
        """Register a new actor and start it once its resources are free."""
        options = request.options if isinstance(request.options, ActorOptions) else ActorOptions()
        ns = options.namespace or request.namespace
        if options.name is not None:
            existing = self.names.lookup(ns, options.name)
            if existing is not None:
                if options.get_if_exists:
                    self._reply(peer, req_id, self.handle_info(existing), True)
                    return
                self._reply(peer, req_id, name_taken(ns, options.name, existing), False)
                return
        cpus = float(options.num_cpus or 0)
        named = f"{options.name!r} ({request.class_name})" if options.name else request.class_name
        problem = self._resources.impossible(f"actor {named}", cpus, options.num_gpus)
        if problem is not None and group_of(options) is None:
            self._reply(peer, req_id, ResourceUnavailableError(problem), False)
            return
        actor = ActorRecord(
            request.actor_id,
            request.class_name,
            request.methods,
            options,
            ns,
            request.cls_body,
            request.args_body,
            peer,
            cpus=cpus,
        )
        self._actors[actor.actor_id] = actor
        self.names.claim(actor)
        self._reply(peer, req_id, self.handle_info(actor), True)
        self._pending.append(actor)
        self.start_pending()

    def start_pending(self) -> None:
        """Start the pending actors, in order, while their resources are free."""
        blocked = False  # the pool's actors start in order; a group's, when their bundle has room
        for actor in list(self._pending):
            if self._stopping():
                return
            if actor not in self._pending:
                continue  # started or ended by a call below
            if actor.state is not ActorState.PENDING:
                self._pending.remove(actor)
                continue
            group = group_of(actor.options)
            if group is not None and self.groups is not None:
                placed = self.groups.take(actor, *group)
                if placed is not False:
                    self._pending.remove(actor)
                    if placed is True:
                        self._launch(actor)
                    else:
                        self.dead(actor, death_reason(actor, ExitKind.GROUP_REMOVED, ""))
                continue
            if blocked or actor.cpus > self._resources.cpus_free:
                blocked = True  # waits, as in Ray, until an actor or task frees CPUs
                continue
            if actor.options.num_gpus:
                gpus = self._resources.allocate_gpus(float(actor.options.num_gpus))
                if gpus is None:
                    blocked = True  # waits until an actor frees a GPU
                    continue
                actor.gpus = gpus
            self._pending.remove(actor)
            self._resources.take_cpus(actor.cpus)
            self._launch(actor)

    def _launch(self, actor: ActorRecord) -> None:
        worker = self._pool.take_for(actor.gpus)  # on the same GPUs, on a restart
        worker.actor = actor
        actor.worker = worker
        actor.state = ActorState.STARTING
        self._pool.send(worker, encode(actor.start_order()))

    def ready(self, actor_id: str, path: str) -> None:
        """The actor's constructor returned; it listens at ``path``."""
        actor = self._actors.get(actor_id)
        if actor is None or actor.state is not ActorState.STARTING:
            return
        actor.state = ActorState.ALIVE
        actor.address = path
        answer_ready(self._reply, actor)
        if actor.terminating:
            actor.terminating = False
            self.maybe_collect(actor)

    # -- ending ---------------------------------------------------------------------

    def worker_exited(self, worker: Worker) -> None:
        """The actor's worker ended: restart the actor, or it is dead."""
        actor = worker.actor
        if actor is None:
            return
        reason = death_reason(actor, worker.exit_kind, worker.exit_detail)
        if self._may_restart(actor, worker):
            self._restart(actor, worker, reason)
        else:
            self.dead(actor, reason)

    def _may_restart(
        self, actor: ActorRecord, worker: Worker, kind: ExitKind | None = None
    ) -> bool:
        """Whether the actor restarts after its worker ends (``kind``: how it will end)."""
        limit = actor.options.max_restarts
        kind = kind or worker.exit_kind
        unexpected = kind is ExitKind.CRASHED or (kind is ExitKind.KILLED and worker.allow_restart)
        return (
            unexpected
            and not self._stopping()
            and actor.state in (ActorState.STARTING, ActorState.ALIVE)
            and (limit == -1 or actor.restarts < limit)
        )

    def _restart(self, actor: ActorRecord, old: Worker, reason: str) -> None:
        """Start the actor again in a new process, with its constructor's original arguments."""
        actor.restarts += 1
        limit = actor.options.max_restarts
        row_id, name = f"{actor.actor_id}-restart-{actor.restarts}", f"{actor.class_name} restart"
        row = (row_id, TaskState.ACTOR_RESTARTED, time.time(), name, actor.actor_id, reason)
        self._task_log.add([row])
        log.warning(
            "%s; restarting it (restart %d of %s)",
            reason,
            actor.restarts,
            "unlimited" if limit == -1 else limit,
        )
        if old.peer is not None:
            self.end_children_of(old.peer)
        answer_restarted(self._reply, actor, reason)
        actor.address = None
        self._launch(actor)

    def end_children_of(self, creator: Peer) -> None:
        """End the non-detached actors ``creator`` created (it died)."""
        for child in list(self._actors.values()):
            if child.creator is creator and not child.options.detached:
                self.terminate(child, ExitKind.CREATOR_DIED)

    def dead(self, actor: ActorRecord, reason: str) -> None:
        """The actor is dead for good: free what it held, answer who waits on it."""
        if actor.state is ActorState.DEAD:
            return
        was_running = actor.state in (ActorState.STARTING, ActorState.ALIVE)
        actor.state = ActorState.DEAD
        actor.death_reason = reason
        self._dead.append(actor.actor_id)
        while len(self._dead) > MAX_DEAD_ACTORS:
            forgotten = self._actors.get(self._dead.popleft())
            if forgotten is not None and forgotten.state is ActorState.DEAD:
                del self._actors[forgotten.actor_id]
                self.handles.forget(forgotten.actor_id)
        for incarnation in range(actor.restarts + 1):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(table_path(self._session_dir, actor.actor_id, incarnation))
        if group_of(actor.options) is not None and self.groups is not None:
            if was_running:
                self.groups.give(actor)  # its bundle, not the pool, held its CPUs and GPUs
            actor.gpus = ()
        elif was_running:
            self._resources.give_cpus(actor.cpus)
        if actor.gpus:
            self._resources.release_gpus(actor.gpus, float(actor.options.num_gpus))
            actor.gpus = ()
        self.names.free(actor)
        answer_dead(self._reply, actor, reason)
        # Actors this one created die with it (their creator is its process).
        if actor.worker is not None and actor.worker.peer is not None:
            self.end_children_of(actor.worker.peer)
        self.start_pending()
        self._on_freed()

    def exiting(self, worker: Worker, kind: str, detail: str) -> None:
        """The worker says it is ending, and why (before its shutdown hook runs)."""
        if worker.exit_kind is None:
            worker.exit_kind = ExitKind(kind)
            worker.exit_detail = detail
        if worker.actor is not None:
            self.names.free(worker.actor)

    def end_in_group(self, actor_id: str) -> None:
        """End the actor for good, without restart: its placement group was removed."""
        actor = self._actors.get(actor_id)
        if actor is None or actor.state is ActorState.DEAD:
            return
        if actor.worker is not None:
            actor.worker.allow_restart = False
        self.names.free(actor)
        self._kill(actor, ExitKind.GROUP_REMOVED, "")

    def kill(self, actor_id: str, no_restart: bool) -> None:
        """``rigd.kill``: kill the actor's process (it restarts unless ``no_restart``)."""
        actor = self._actors.get(actor_id)
        if actor is None:
            return
        if actor.worker is not None:
            actor.worker.allow_restart = not no_restart
        if actor.worker is None or not self._may_restart(actor, actor.worker, ExitKind.KILLED):
            # Ending for good: the name is free before kill() returns.
            self.names.free(actor)
        self._kill(actor, ExitKind.KILLED, "it was killed with rigd.kill()")

    def _kill(self, actor: ActorRecord, kind: ExitKind, detail: str) -> None:
        if actor.state is ActorState.PENDING:
            self.dead(actor, death_reason(actor, kind, detail))
            return
        worker = actor.worker
        if worker is None or actor.state is ActorState.DEAD:
            return
        if worker.exit_kind is None or worker.exit_kind is not ExitKind.CONSTRUCTOR_FAILED:
            worker.exit_kind = kind
            worker.exit_detail = detail
        try:
            worker.popen.kill()
        except ProcessLookupError:
            pass

    def terminate(self, actor: ActorRecord, kind: ExitKind) -> None:
        """End an actor promptly: its hook runs, then it exits; killed if it hangs."""
        if actor.state is ActorState.DEAD:
            return
        if actor.state is ActorState.PENDING:
            self.dead(actor, death_reason(actor, kind, ""))
            return
        self.names.free(actor)
        worker = actor.worker
        assert worker is not None
        if worker.exit_kind is None:
            worker.exit_kind = kind
            worker.exit_detail = ""
        self._pool.send(worker, encode(Terminate(TerminateMode.PROMPT.value, kind.value)))
        self._after(PROMPT_KILL_AFTER_S, lambda: self._kill(actor, kind, "it did not end in time"))

    def maybe_collect(self, actor: ActorRecord) -> None:
        """End the actor gracefully if no process references it any more."""
        if actor.options.detached or actor.state is ActorState.DEAD or actor.terminating:
            return
        if self.handles.referenced(actor.actor_id):
            return
        actor.terminating = True
        self.names.free(actor)
        if actor.state is ActorState.PENDING:
            self.dead(actor, death_reason(actor, ExitKind.GRACEFUL, ""))
        elif actor.state is ActorState.ALIVE:
            assert actor.worker is not None
            actor.worker.exit_kind = ExitKind.GRACEFUL
            order = Terminate(TerminateMode.DRAIN.value, "graceful")
            self._pool.send(actor.worker, encode(order))
        # STARTING: collected once ready (see ready()).

    def peer_lost(self, peer: Peer) -> None:
        """A process is gone: its handles are released, its children end."""
        for actor in list(self._actors.values()):
            if self.handles.release(actor.actor_id, peer):
                self.maybe_collect(actor)
            if actor.creator is peer and not actor.options.detached:
                self.terminate(actor, ExitKind.CREATOR_DIED)

    # -- queries ----------------------------------------------------------------------

    def address(self, peer: Peer, req_id: int, actor_id: str) -> None:
        """Answer where the actor listens: now if alive, once it is if starting."""
        answer_address(self._reply, peer, req_id, actor_id, self._actors.get(actor_id))

    def death(self, peer: Peer, req_id: int, actor_id: str, incarnation: int) -> None:
        """Answer ``(restarted, reason)`` once the actor's process ``incarnation`` ended."""
        actor = self._actors.get(actor_id)
        answer_death(self._reply, peer, req_id, actor_id, incarnation, actor)

    def rows(self) -> list[dict[str, Any]]:
        """A row per actor, for ``rigd.util.state.list_actors``."""
        return [
            a.row(
                self._resources.waiting_for(a.cpus, a.options.num_gpus)
                if a.state is ActorState.PENDING
                else None
            )
            for a in self._actors.values()
        ]
