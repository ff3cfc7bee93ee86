"""An actor's replies to its callers: sending them (from any thread, one
lock per caller), a generator method's items as they come, and the call's
end in the task events.

Replies are the hot path's plain tuples (``_messages``: ``REPLY_OK``,
``REPLY_ERR``, ``REPLY_ITEM``, ``REPLY_END``), built here and in
``_replies.error_reply`` only.
"""

from __future__ import annotations

import inspect
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

from rigd._exceptions import TaskCancelledError
from rigd.actors._call_messages import reply_end, reply_item, reply_ok
from rigd.actors._context import ActorExit
from rigd.actors._events import EventBuffer, TaskState
from rigd.actors._messages import FINAL_REPLIES, REPLY_ERR
from rigd.actors._replies import error_reply
from rigd.actors._schema import ActorSchema
from rigd.actors._wire import dumps, pack_frame

__all__ = ["CallReplies"]


class CallReplies:
    """What an actor's server and executors send back to callers.

    Args:
        schema: the actor's methods (which of them are generators).
        shm_prefix: the prefix of the session's shared-memory segments.
        events: where a call's end is recorded.
        exit_from_call: ends the actor from a method that raised SystemExit,
            KeyboardInterrupt or called ``exit_actor()``.
        read_ahead: a serial actor's look for cancels between a stream's
            items (None for threaded and async actors).
    """

    def __init__(
        self,
        schema: ActorSchema,
        shm_prefix: str,
        events: EventBuffer,
        exit_from_call: Callable[..., None],
        read_ahead: Callable[[socket.socket], bool] | None,
    ) -> None:
        self._schema = schema
        self._shm_prefix = shm_prefix
        self._events = events
        self._exit_from_call = exit_from_call
        self._read_ahead = read_ahead
        self.send_locks: dict[socket.socket, threading.Lock] = {}
        # Calls that record task events, until their final reply leaves.
        self.task_ids: dict[tuple[socket.socket, int], str] = {}
        # Generator methods sending items, and those a cancel came for.
        self.streams: set[tuple[socket.socket, int]] = set()
        self.stream_cancels: set[tuple[socket.socket, int]] = set()

    def streams_items(self, method: str) -> bool:
        """Whether a call's generator result streams: only a generator method's does.

        A plain method that returns a generator object returns a value, as in
        Ray; it cannot be pickled, and the caller gets that ``TypeError``.
        """
        spec = self._schema.methods.get(method)
        return spec is not None and spec.is_generator

    def send(self, conn: socket.socket, message: tuple[Any, ...]) -> None:
        """Send a reply to the caller on ``conn``; record the call's end (any thread)."""
        if self.task_ids and message[0] in FINAL_REPLIES:
            task_id = self.task_ids.pop((conn, message[1]), None)
            if task_id is not None:
                if message[0] == REPLY_ERR:
                    error = message[2][1].rsplit(".", 1)[-1]
                    self._events.record(task_id, TaskState.FAILED, error=error)
                else:
                    self._events.record(task_id, TaskState.FINISHED)
        frame = pack_frame(dumps(message, self._shm_prefix))
        lock = self.send_locks.get(conn)
        try:
            if lock is None:
                conn.sendall(frame)
            else:
                with lock:
                    conn.sendall(frame)
        except OSError:
            pass

    def stream(
        self, conn: socket.socket, call_id: int, function_name: str, items: Iterator[Any]
    ) -> None:
        """Send a generator method's items as they come, then the end (any thread).

        A cancel stops the generator at its next item (Ray's rule for
        streaming calls): a serial actor looks for one between items.
        """
        key = (conn, call_id)
        self.streams.add(key)
        try:
            for item in items:
                self.send(conn, reply_item(call_id, item))
                if self._read_ahead is not None:
                    self._read_ahead(conn)
                if key in self.stream_cancels:
                    self.stream_cancels.discard(key)
                    close = getattr(items, "close", None)
                    if close is not None:
                        close()
                    raise TaskCancelledError(f"the call {function_name} was cancelled")
        except ActorExit:
            self._exit_from_call(conn, call_id)
            return
        except Exception as exc:  # noqa: BLE001 - boundary: the error ends the stream
            self.send(conn, error_reply(call_id, function_name, exc, self._shm_prefix))
            return
        except BaseException as exc:  # noqa: BLE001 - sys.exit, KeyboardInterrupt: the actor ends
            self._exit_from_call(conn, call_id, exc)
            return
        finally:
            self.streams.discard(key)
            self.stream_cancels.discard(key)
        self.send(conn, reply_end(call_id))

    def reply(
        self,
        conn: socket.socket,
        call_id: int,
        function_name: str,
        result: Any,
        error: BaseException | None,
    ) -> None:
        """Answer a call from an executor's thread."""
        method = function_name.rsplit(".", 1)[-1]
        if error is None and inspect.isgenerator(result) and self.streams_items(method):
            self.stream(conn, call_id, function_name, result)
            return
        if error is None:
            try:
                self.send(conn, reply_ok(call_id, result))
                return
            except (TypeError, OSError) as exc:
                error = TypeError(f"the return value of {function_name} cannot be sent back: {exc}")
        self.send(conn, error_reply(call_id, function_name, error, self._shm_prefix))
