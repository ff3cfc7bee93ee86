"""A process's connection to the head: requests and their replies, one-way
notices, generator tasks' items, and the refs this process lent or borrowed
(Ray's borrowed refs: the head carries the value from owner to borrower).
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from collections.abc import Callable
from typing import Any

from rigd._exceptions import RigdError, RuntimeNotRunningError
from rigd.actors import _ref
from rigd.actors._from_head import HeadItem, HeadReply, RefCancelWanted, RefWanted
from rigd.actors._generator import ObjectRefGenerator
from rigd.actors._io_loop import IoLoop
from rigd.actors._protocol import decode_from_head, encode, encode_request, kind_of
from rigd.actors._ref import ObjectRef
from rigd.actors._to_head import Hello, Notice, RefCancel, RefGet, RefValue, Request
from rigd.actors._wire import RECV_SIZE, FrameReader, dumps, loads, pack_frame

__all__ = ["HeadClient"]


class HeadClient:
    """The socket to the head, and the requests waiting for its replies.

    Args:
        session_dir: the session's directory (the head listens in it).
        shm_prefix: the prefix of the session's shared-memory segments.
        io: the I/O thread that reads the head's socket.
        worker_id: this process's id if it is a worker, else None.
        on_order: called on the I/O thread with each head -> worker message.
        on_lost: called on the I/O thread when the head's socket closes.
    """

    def __init__(
        self,
        session_dir: str,
        shm_prefix: str,
        io: IoLoop,
        worker_id: str | None,
        on_order: Callable[[tuple[Any, ...]], None] | None,
        on_lost: Callable[[], None],
    ) -> None:
        self.shm_prefix = shm_prefix
        self.closed = False
        self._io = io
        self._on_order = on_order
        self._on_lost = on_lost
        self._pending: dict[int, ObjectRef[Any]] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._reader = FrameReader()
        # Generator tasks: request id -> the generator its items feed.
        self._streams: dict[int, ObjectRefGenerator] = {}
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(os.path.join(session_dir, "head.sock"))
        self._send(encode(Hello(worker_id, os.getpid())))
        io.watch(self._sock.fileno(), self._on_readable)

    def _send(self, message: tuple[Any, ...]) -> None:
        frame = pack_frame(dumps(message, self.shm_prefix))
        with self._lock:
            self._sock.sendall(frame)

    def request(self, request: Request) -> ObjectRef[Any]:
        """Send a request to the head; the ref gets the reply's payload."""
        return self.request_with_id(request)[1]

    def request_with_id(
        self, request: Request, stream: ObjectRefGenerator | None = None
    ) -> tuple[int, ObjectRef[Any]]:
        """Like ``request``, also returning the request's id; ``stream`` gets its items."""
        if self.closed:
            raise RuntimeNotRunningError("the rigd runtime is shut down; call rigd.init() again")
        reply: ObjectRef[Any] = ObjectRef()
        req_id = next(self._ids)
        self._pending[req_id] = reply
        if stream is not None:
            # Registered before sending, so that no item can arrive unclaimed.
            self._streams[req_id] = stream

            def forget(_: ObjectRef[Any]) -> None:
                self._streams.pop(req_id, None)

            reply._add_callback(forget)
        self._send(encode_request(req_id, request))
        return req_id, reply

    def call(self, request: Request, timeout: float | None = 60) -> Any:
        """Send a request to the head and wait for its reply's payload.

        Raises:
            RigdError: no reply within ``timeout`` seconds.
            RuntimeNotRunningError: the runtime is shut down.
        """
        reply = self.request(request)
        if not reply._wait(timeout):
            raise RigdError(
                f"the rigd head did not answer {kind_of(request).name} within {timeout} s"
            )
        return reply._result()

    def notice(self, notice: Notice) -> None:
        """Send a one-way notice to the head (nothing once closed)."""
        if not self.closed:
            self._send(encode(notice))

    def report(self, notice: Notice) -> None:
        """Send a worker's report (ACTOR_READY, TASK_DONE, ...), even while closing."""
        self._send(encode(notice))

    def _on_readable(self) -> None:
        try:
            data = self._sock.recv(RECV_SIZE)
        except OSError:
            data = b""
        if not data:
            self._io.unwatch(self._sock.fileno())
            self._on_lost()
            return
        for frame in self._reader.feed(data):
            message = loads(frame)
            record = decode_from_head(message)
            if type(record) is HeadReply:
                reply = self._pending.pop(record.req_id, None)
                if reply is None:
                    continue
                if record.ok:
                    reply._set_value(record.payload)
                else:
                    reply._set_error(record.payload)
            elif type(record) is HeadItem:
                stream = self._streams.get(record.req_id)
                if stream is not None:
                    stream._push(loads(record.body)[2])
            elif type(record) is RefWanted:
                self._serve_lent_ref(record.token, record.ref_id)
            elif type(record) is RefCancelWanted:
                self._cancel_lent_ref(record.ref_id, record.force)
            elif self._on_order is not None:
                self._on_order(message)

    def fail_all(self, error: BaseException) -> None:
        """Fail every request still waiting for a reply."""
        for reply in list(self._pending.values()):
            reply._set_error(error)
        self._pending.clear()

    def close(self) -> None:
        """Close the socket (the I/O thread stopped first)."""
        self.closed = True
        self._sock.close()

    # -- refs passed nested, while pending (Ray's borrowed refs) -----------------

    def fetch_borrowed(self, ref: ObjectRef[Any]) -> None:
        """Ask the owner of ``ref`` (through the head) for its value; fill ``ref`` with it."""
        if self.closed:
            ref._set_error(RuntimeNotRunningError("the rigd runtime is shut down"))
            return
        reply = self.request(RefGet(ref._id))

        def fill(r: ObjectRef[Any]) -> None:
            if r._error is not None:
                ref._set_error(r._error)
                return
            ok, body = r._value
            try:
                value = loads(body)
            except Exception as exc:  # noqa: BLE001 - boundary: the ref gets the error
                ref._set_error(exc)
                return
            if ok:
                ref._set_value(value)
            else:
                ref._set_error(value)

        reply._add_callback(fill)

    def cancel_borrowed(self, ref_id: str, force: bool) -> None:
        """Ask the owner of a borrowed ref (through the head) to cancel its call."""
        self.notice(RefCancel(ref_id, force))

    def _cancel_lent_ref(self, ref_id: str, force: bool) -> None:
        """Cancel the call filling a ref this process lent (asked by a borrower)."""
        ref = _ref.lent_ref(ref_id)
        canceller = None if ref is None or ref._done else ref._canceller
        if canceller is None:
            return

        def cancel() -> None:
            try:
                canceller(force)
            except Exception:  # noqa: BLE001 - best effort, as Ray's remote cancel
                pass

        # Not on this (I/O) thread: a canceller may wait for the head's reply.
        threading.Thread(target=cancel, name="rigd-cancel", daemon=True).start()

    def _serve_lent_ref(self, token: int, ref_id: str) -> None:
        """Send the value of a ref this process lent once it has one (any thread)."""
        ref = _ref.lent_ref(ref_id)
        if ref is None:
            error = RigdError(
                f"the value of ObjectRef({ref_id}) is gone: its owner forgot it "
                f"(more than {_ref.MAX_LENT} refs lent since)"
            )
            self.notice(RefValue(token, False, dumps(error, self.shm_prefix)))
            return

        def send(r: ObjectRef[Any]) -> None:
            ok = r._error is None
            try:
                body = dumps(r._value if ok else r._error, self.shm_prefix)
            except Exception as exc:  # noqa: BLE001 - boundary: the borrower gets the error
                ok, body = False, dumps(TypeError(f"{r!r} cannot be sent: {exc}"), "")
            try:
                self.notice(RefValue(token, ok, body))
            except OSError:
                pass  # the session is ending

        ref._add_callback(send)
