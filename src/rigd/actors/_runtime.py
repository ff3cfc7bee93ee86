"""The runtime of one process: its connections, its I/O thread, its refs.

Every process of a rigd session (the driver, each actor, each task worker)
has one ``Runtime``. It holds:

- one connection to the head (requests with ids; notices one way);
- one connection per actor it calls, opened on first use, carrying that
  process's calls to that actor in order (so one submitter's calls run in
  the order it sent them);
- one I/O thread that reads every connection and fills the refs.

Sending happens on the caller's own thread when nothing is queued ahead of
the call (the common case: one ``sendall``); calls waiting on a pending ref
argument, or on an actor that is still starting, queue in the actor's
``outbox`` and leave from the I/O thread when they can.

``Runtime`` composes the parts, each in its module: the I/O thread
(``_io_loop``), the head's connection and borrowed refs (``_head_client``),
calls to actors (``_actor_calls``, over ``_channel``), task submission
(``_task_calls``), refs in arguments (``_ref_args``) and replies
(``_replies``); it keeps this process's handle counts itself.
"""

from __future__ import annotations

import collections
import itertools
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from rigd._exceptions import RuntimeNotRunningError
from rigd.actors import _ref
from rigd.actors._actor_calls import ActorCalls
from rigd.actors._channel import ActorChannel
from rigd.actors._events import FLUSH_S, EventBuffer
from rigd.actors._head_client import HeadClient
from rigd.actors._io_loop import IoLoop
from rigd.actors._ref import ObjectRef
from rigd.actors._replies import error_reply
from rigd.actors._session_files import cleanup_after_lost_head
from rigd.actors._task_calls import TaskCalls
from rigd.actors._to_head import Acquire, Lend, Notice, Release, Request, TaskEvents

__all__ = ["Runtime", "error_reply"]


class Runtime:
    """The per-process side of a rigd session.

    Args:
        session_dir: the directory of the session's socket files.
        shm_prefix: the prefix of the session's shared-memory segments.
        namespace: the namespace of named actors created here by default.
        totals: the session's resources (``{"CPU": n, "GPU": n}``).
        worker_id: this process's id if it is a worker, else ``None``.
        on_head_message: called on the I/O thread with head -> worker
            messages (workers only).
    """

    def __init__(
        self,
        session_dir: str,
        shm_prefix: str,
        namespace: str,
        totals: dict[str, float],
        worker_id: str | None = None,
        on_head_message: Callable[[tuple[Any, ...]], None] | None = None,
    ) -> None:
        self.session_dir = session_dir
        self.shm_prefix = shm_prefix
        self.namespace = namespace
        self.totals = totals
        self.worker_id = worker_id
        self.closed = False
        self._handle_counts: dict[str, int] = {}
        self._table_lock = threading.Lock()
        self._dropped: collections.deque[str] = collections.deque()
        self._task_ids = itertools.count(1)
        self._io = IoLoop(self._tick, self._tick_timeout, self._process_dropped)
        self.events = EventBuffer(on_first=self._io.wake)
        self._head = HeadClient(
            session_dir, shm_prefix, self._io, worker_id, on_head_message, self._on_head_lost
        )
        self._calls = ActorCalls(
            session_dir, shm_prefix, self._io, self._head, self.events, self.new_task_id
        )
        self._tasks = TaskCalls(shm_prefix, self._io, self._head, self.events)
        self._io.start()
        _ref.fetch_borrowed = self._head.fetch_borrowed
        _ref.cancel_borrowed = self._head.cancel_borrowed

    # -- the head ------------------------------------------------------------

    def head_request(self, request: Request) -> ObjectRef[Any]:
        """Send a request to the head; the ref gets the reply's payload."""
        return self._head.request(request)

    def head_call(self, request: Request, timeout: float | None = 60) -> Any:
        """Send a request to the head and wait for its reply's payload.

        Raises:
            RigdError: no reply within ``timeout`` seconds.
            RuntimeNotRunningError: the runtime is shut down.
        """
        return self._head.call(request, timeout)

    def head_notice(self, notice: Notice) -> None:
        """Send a one-way notice to the head."""
        self._head.notice(notice)

    def send_to_head(self, notice: Notice) -> None:
        """Send a worker's report (ACTOR_READY, TASK_DONE, ...) to the head."""
        self._head.report(notice)

    def _on_head_lost(self) -> None:
        if self.worker_id is not None and not self.closed:
            # The head is gone: the session is over. A worker must not
            # outlive it (its parent died, or shutdown is under way).
            cleanup_after_lost_head(self.session_dir, self.shm_prefix, wait_s=2.0)
            os._exit(1)
        self._fail_everything(RuntimeNotRunningError("the rigd runtime was shut down"))

    # -- handles: reference counting -------------------------------------------

    def acquire_handle(self, actor_id: str, token: str | None) -> None:
        """Count a new handle object of ``actor_id`` in this process."""
        with self._table_lock:
            self._handle_counts[actor_id] = self._handle_counts.get(actor_id, 0) + 1
            if token is not None:
                self._head.notice(Acquire(actor_id, token))

    def lend_handle(self, actor_id: str, token: str) -> None:
        """Tell the head a handle is on its way to another process."""
        self._head.notice(Lend(actor_id, token))

    def drop_handle(self, actor_id: str) -> None:
        """Note that a handle object died; safe to call from ``__del__``."""
        self._dropped.append(actor_id)
        self._io.wake()

    def _process_dropped(self) -> None:
        while self._dropped:
            actor_id = self._dropped.popleft()
            with self._table_lock:
                count = self._handle_counts.get(actor_id, 0) - 1
                if count > 0:
                    self._handle_counts[actor_id] = count
                    continue
                self._handle_counts.pop(actor_id, None)
                if self._calls.close_channel(actor_id):
                    self._head.notice(Release(actor_id))

    # -- calls and tasks ---------------------------------------------------------

    def channel(self, actor_id: str, ordered: bool = True) -> ActorChannel:
        """This process's channel to ``actor_id``, opened if needed."""
        return self._calls.channel(actor_id, ordered)

    def submit_call(
        self,
        actor_id: str,
        method: str,
        function_name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        group: str | None = None,
        streaming: bool = False,
        events: bool = True,
        ordered: bool = True,
    ) -> Any:
        """Send a call to an actor; return the ref of its result.

        ``group`` overrides the method's concurrency group for this call.
        With ``streaming`` (a generator method) an ``ObjectRefGenerator`` is
        returned instead, which yields a ref per item. ``ordered``: the actor
        runs calls in the order sent (a serial actor), so a call waiting for
        a ref argument holds back the calls sent after it; otherwise they
        leave at once.

        Raises:
            RuntimeNotRunningError: the runtime is shut down.
            TypeError: an argument cannot be serialized.
        """
        return self._calls.submit(
            actor_id, method, function_name, args, kwargs, group, streaming, events, ordered
        )

    def wait(self, ref: ObjectRef[Any], timeout: float | None) -> bool:
        """Wait for ``ref``; read its reply on this thread when possible."""
        return self._calls.wait(ref, timeout)

    def submit_task(
        self,
        fn_id: str,
        fn_body: bytes,
        function_name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        num_cpus: float,
        max_retries: int,
        events: bool = True,
        streaming: bool = False,
        num_gpus: float = 0,
        retry_exceptions: Any = False,
    ) -> Any:
        """Queue a task at the head; return the ref of its result.

        With ``streaming`` (a generator function) an ``ObjectRefGenerator``
        is returned, fed as the task yields. A retried streaming task runs
        again from its start, and the items already delivered are not sent
        again (Ray's rule).
        """
        return self._tasks.submit(
            self.new_task_id() if events else None,
            # What the submitter's context holds reaches the task: an
            # actor it names lands in the submitter's namespace (Ray's rule).
            self.namespace,
            fn_id,
            fn_body,
            function_name,
            args,
            kwargs,
            num_cpus,
            max_retries,
            streaming,
            num_gpus,
            retry_exceptions,
        )

    def new_task_id(self) -> str:
        """A task id unique in the session: this process's pid and a counter."""
        return f"{os.getpid():x}-t{next(self._task_ids):x}"

    # -- task events ---------------------------------------------------------------

    def flush_events(self) -> None:
        """Send the buffered task events to the head."""
        if self.events and not self.closed:
            try:
                self._head.notice(TaskEvents(self.events.drain()))
            except OSError:
                pass  # the head is gone; so is the task log

    def _tick_timeout(self) -> float:
        return FLUSH_S if self.events else -1

    def _tick(self) -> None:
        if self.events and time.monotonic() - self.events.last_flush >= FLUSH_S:
            self.flush_events()

    # -- shutdown ----------------------------------------------------------------

    def _fail_everything(self, error: BaseException) -> None:
        self._head.fail_all(error)
        self._calls.fail_all(error)

    def close(self) -> None:
        """Stop the I/O thread and close every connection."""
        if self.closed:
            return
        self.closed = self._head.closed = self._calls.closed = True
        self._io.close()
        self._fail_everything(RuntimeNotRunningError("the rigd runtime was shut down"))
        self._head.close()
        self._calls.close_sockets()
