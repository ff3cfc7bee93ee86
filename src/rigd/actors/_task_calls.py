"""Tasks submitted from this process: sent to the head once their ref
arguments are ready, cancelled through it, and their results delivered.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

from rigd._exceptions import TaskCancelledError
from rigd.actors._events import EventBuffer, TaskState
from rigd.actors._generator import ObjectRefGenerator
from rigd.actors._head_client import HeadClient
from rigd.actors._io_loop import IoLoop
from rigd.actors._ref import ObjectRef
from rigd.actors._ref_args import pending_refs, resolve_refs
from rigd.actors._replies import finish_task_ref
from rigd.actors._to_head import CancelTask, SubmitTask
from rigd.actors._wire import dumps

__all__ = ["TaskCalls"]


class TaskCalls:
    """Submits this process's tasks to the head's scheduler.

    Args:
        shm_prefix: the prefix of the session's shared-memory segments.
        io: the I/O thread (a task whose ref arguments were pending leaves from it).
        head: the head's connection.
        events: where task events are recorded.
    """

    def __init__(self, shm_prefix: str, io: IoLoop, head: HeadClient, events: EventBuffer) -> None:
        self._shm_prefix = shm_prefix
        self._io = io
        self._head = head
        self._events = events

    def submit(
        self,
        task_id: str | None,
        namespace: str,
        fn_id: str,
        fn_body: bytes,
        function_name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        num_cpus: float,
        max_retries: int,
        streaming: bool,
        num_gpus: float,
        retry_exceptions: Any,
    ) -> Any:
        """Queue a task at the head; return the ref of its result (see ``Runtime.submit_task``).

        ``task_id``: the id its events are recorded under (None: no events).
        ``namespace``: the submitter's; an actor the task names lands in it.
        """
        ref: Any = ObjectRefGenerator() if streaming else ObjectRef()
        if task_id is not None:
            self._events.record(task_id, TaskState.SUBMITTED, function_name)
        cancelled = threading.Event()

        def cancel_before_sending(force: bool = False) -> None:
            cancelled.set()
            ref._set_error(
                TaskCancelledError(f"the task {function_name} was cancelled with rigd.cancel")
            )

        ref._canceller = cancel_before_sending

        def send() -> None:
            if cancelled.is_set():
                return
            resolved_args, resolved_kwargs, failed = resolve_refs(args, kwargs)
            if failed is not None:
                ref._set_error(failed)
                return
            try:
                body = dumps((resolved_args, resolved_kwargs), self._shm_prefix)
            except Exception as exc:  # noqa: BLE001 - boundary: the task's ref gets the error
                ref._set_error(exc)
                return
            request = SubmitTask(
                fn_id,
                fn_body,
                function_name,
                body,
                num_cpus,
                max_retries,
                task_id,
                num_gpus,
                streaming,
                namespace,
                retry_exceptions,
            )
            stream = ref if isinstance(ref, ObjectRefGenerator) else None
            req_id, reply = self._head.request_with_id(request, stream)
            ref._canceller = functools.partial(self._cancel, req_id)
            reply._add_callback(lambda r: self._finished(task_id, ref, r))

        deps = pending_refs(args, kwargs)
        if not deps:
            send()
            return ref
        remaining = [len(deps)]
        lock = threading.Lock()

        def dep_done(_: ObjectRef[Any]) -> None:
            with lock:
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self._io.run_soon(send)

        for dep in deps:
            dep._add_callback(dep_done)
        return ref

    def _cancel(self, req_id: int, force: bool = False) -> None:
        self._head.notice(CancelTask(req_id, force))

    def _finished(self, task_id: str | None, ref: ObjectRef[Any], reply: ObjectRef[Any]) -> None:
        error = finish_task_ref(ref, reply)
        if task_id is not None:
            if error is None:
                self._events.record(task_id, TaskState.FINISHED)
            else:
                self._events.record(task_id, TaskState.FAILED, error=type(error).__name__)
