"""A task worker: runs the tasks the head sends, one at a time, on the main
thread; a cancel interrupts the running one as Ctrl-C would (Ray's rule).
"""

from __future__ import annotations

import inspect
import logging
import os
import pickle
import queue
import signal
import sys
from collections.abc import Iterator
from typing import Any

from rigd._exceptions import RigdError, TaskCancelledError, TaskError
from rigd.actors import _context
from rigd.actors._call_messages import reply_end, reply_item, reply_ok
from rigd.actors._from_head import CancelRunning, RunTask
from rigd.actors._messages import ExitKind
from rigd.actors._protocol import decode_order
from rigd.actors._replies import error_reply
from rigd.actors._runtime import Runtime
from rigd.actors._to_head import Exiting, TaskDone, TaskItem
from rigd.actors._wire import dumps, loads, release_send_pools

__all__ = ["on_sigint", "on_task_cancel", "serve_tasks"]

log = logging.getLogger("rigd.worker")


def serve_tasks(
    runtime: Runtime, inbox: queue.SimpleQueue[tuple[Any, ...]], first: tuple[Any, ...]
) -> None:
    functions: dict[str, Any] = {}
    message = first
    while True:
        order = decode_order(message)
        if type(order) is not RunTask:
            runtime.send_to_head(Exiting(ExitKind.SHUTDOWN.value, ""))
            release_send_pools()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        task_id, fn_id, fn_body, name, body = (
            order.task_id,
            order.fn_id,
            order.fn_body,
            order.name,
            order.body,
        )
        streaming, namespace, retry, retries = (
            order.streaming,
            order.namespace,
            order.retry_exceptions,
            order.retries_left,
        )
        items = order.items_sent
        runtime.namespace = namespace
        _context.current_task = task_id
        try:
            fn = functions.get(fn_id)
            if fn is None:
                fn = functions[fn_id] = pickle.loads(fn_body)
            if task_id in _cancelled_tasks:
                raise KeyboardInterrupt  # cancelled before it started here
            sent = [items]  # a generator's items sent, over its attempts
            while True:
                try:
                    reply = _run_task(runtime, fn, body, task_id, name, streaming, sent)
                    break
                except Exception as exc:
                    if retries != 0 and _retryable(exc, retry):
                        retries -= 1
                        log.info("task %s raised %r; retrying it (retry_exceptions)", name, exc)
                        continue
                    raise
        except KeyboardInterrupt as exc:
            if task_id not in _cancelled_tasks:
                raise  # not a cancel: the worker ends, and the head retries the task
            _cancelled_tasks.discard(task_id)
            cancel = TaskCancelledError(f"the task {name} was cancelled with rigd.cancel")
            cancel.__cause__ = exc
            prefix = runtime.shm_prefix
            reply = dumps(error_reply(task_id, name, cancel, prefix), prefix)
        except Exception as exc:  # noqa: BLE001 - boundary: the error goes to the submitter
            reply = dumps(error_reply(task_id, name, exc, runtime.shm_prefix), runtime.shm_prefix)
        finally:
            _context.current_task = None
        runtime.send_to_head(TaskDone(task_id, reply))
        message = inbox.get()


def _run_task(
    runtime: Runtime,
    fn: Any,
    body: bytes,
    task_id: int,
    name: str,
    streaming: bool,
    sent: list[int],
) -> bytes:
    """Run one task; return its reply (items of a generator task go as they come).

    ``sent[0]`` counts the items sent: a retried generator runs again from
    its start, and the items its caller already has are not sent twice (Ray's
    rule for retried streaming generators).
    """
    args, kwargs = loads(body)
    result = fn(*args, **kwargs)
    if inspect.isasyncgen(result):
        result = _step_async(result)
    if inspect.isgenerator(result) and not streaming:
        raise TypeError(
            f"the task {name} returned a generator object, which cannot be sent "
            "back; make it a generator function (yield), or pass "
            "num_returns='streaming'"
        )
    if inspect.isgenerator(result):
        for index, item in enumerate(result):
            if index < sent[0]:
                continue
            item_body = dumps(reply_item(task_id, item), runtime.shm_prefix)
            runtime.send_to_head(TaskItem(task_id, item_body))
            sent[0] += 1
        return dumps(reply_end(task_id), runtime.shm_prefix)
    return dumps(reply_ok(task_id, result), runtime.shm_prefix)


def _retryable(exc: BaseException, retry: bool | tuple[type[BaseException], ...]) -> bool:
    if isinstance(exc, RigdError) and not isinstance(exc, TaskError):
        return False  # rigd's own (a cancel, a dead actor): not the function's failure
    if isinstance(retry, tuple):
        return isinstance(exc, retry)
    return bool(retry)


#: Tasks a cancel came for (added on the I/O thread, read by the main thread).
_cancelled_tasks: set[int] = set()


def on_task_cancel(message: tuple[Any, ...]) -> bool:
    """Interrupt the task a ``CANCEL_TASK`` names (I/O thread); True if handled."""
    order = decode_order(message)
    if type(order) is not CancelRunning:
        return False
    _cancelled_tasks.add(order.task_id)
    if _context.current_task == order.task_id:
        # The handler runs on the main thread between bytecodes, and wakes
        # it from a blocking wait (rigd.get, a lock, a sleep) as Ctrl-C would.
        os.kill(os.getpid(), signal.SIGINT)
    return True


def on_sigint(signum: int, frame: object) -> None:
    """Raise KeyboardInterrupt in a task being cancelled; ignore Ctrl-C otherwise."""
    if _context.current_task in _cancelled_tasks:
        raise KeyboardInterrupt


def _step_async(agen: Any) -> Iterator[Any]:
    """Yield an async generator task's items as it makes them, on a private loop."""
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        while True:
            try:
                yield loop.run_until_complete(agen.__anext__())
            except StopAsyncIteration:
                return
    finally:
        loop.close()
