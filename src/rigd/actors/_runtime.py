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
"""

from __future__ import annotations

import collections
import functools
import itertools
import logging
import os
import select
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from rigd._exceptions import (
    ActorDiedError,
    RigdError,
    RuntimeNotRunningError,
    TaskCancelledError,
    TaskError,
)
from rigd.actors import _ref
from rigd.actors._events import FLUSH_S, EventBuffer, TaskState
from rigd.actors._generator import ObjectRefGenerator
from rigd.actors._messages import Msg
from rigd.actors._ref import ObjectRef
from rigd.actors._session_files import cleanup_after_lost_head
from rigd.actors._started import UNKNOWN, last_started, table_path
from rigd.actors._wire import (
    RECV_SIZE,
    FrameReader,
    check_picklable,
    dumps,
    loads,
    pack_frame,
    recv_nowait,
)

__all__ = ["Runtime", "error_reply"]

log = logging.getLogger(__name__)

_CALL = int(Msg.CALL)
_REPLY_OK = int(Msg.REPLY_OK)
_REPLY_ERR = int(Msg.REPLY_ERR)
_REPLY_ITEM = int(Msg.REPLY_ITEM)
_REPLY_END = int(Msg.REPLY_END)
_CLOSE = int(Msg.CLOSE)
_CANCEL = int(Msg.CANCEL)
_HEAD_REPLY = int(Msg.HEAD_REPLY)
_HEAD_ITEM = int(Msg.HEAD_ITEM)
_REF_WANTED = int(Msg.REF_WANTED)
_REF_CANCEL_WANTED = int(Msg.REF_CANCEL_WANTED)
_EPOLLIN = select.EPOLLIN
_EPOLLOUT = select.EPOLLOUT
# Back-pressure: a caller that has this much queued for one actor waits until
# it falls to LOW_WATER (the I/O thread keeps sending and reading meanwhile),
# so a flood of calls holds a bounded amount of memory.
HIGH_WATER = 16 << 20
LOW_WATER = 4 << 20


def error_reply(
    call_id: Any, function_name: str, exc: BaseException, shm_prefix: str
) -> tuple[Any, ...]:
    """Build a ``REPLY_ERR`` message for an exception raised by user code.

    The cause is pickled on its own, so a cause that cannot be pickled (or
    unpickled on the other side) still leaves its class name and traceback.
    """
    tb = "".join(traceback.format_exception(exc))
    try:
        cause: bytes | None = dumps(exc, shm_prefix)
    except Exception:  # noqa: BLE001 - boundary: any pickling failure means "no cause"
        cause = None
    cls = type(exc)
    return (_REPLY_ERR, call_id, (cause, f"{cls.__module__}.{cls.__qualname__}", tb, function_name))


def reply_error_to_exception(payload: tuple[Any, ...]) -> BaseException:
    """Turn the payload of a ``REPLY_ERR`` into the exception ``rigd.get`` raises."""
    cause_body, class_name, tb, function_name = payload
    if class_name.startswith("rigd._exceptions.") and cause_body is not None:
        # rigd's own errors (ActorDiedError from exit_actor, a nested
        # TaskError) pass through as they are.
        try:
            exc = loads(cause_body)
            if isinstance(exc, RigdError):
                return exc
        except Exception:  # noqa: BLE001 - fall through to a plain TaskError
            pass
    cause: BaseException | None = None
    if cause_body is not None:
        try:
            cause = loads(cause_body)
        except Exception:  # noqa: BLE001 - the class may not import here
            cause = None
    return TaskError.from_remote(function_name, cause, class_name, tb)


class ChannelState(Enum):
    """Where a process's connection to one actor stands."""

    CONNECTING = "connecting"
    OPEN = "open"
    DYING = "dying"
    DEAD = "dead"


@dataclass(slots=True)
class _Outgoing:
    call_id: int
    ref: ObjectRef[Any] | ObjectRefGenerator
    method: str
    function_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    group: str | None = None
    waiting: int = 0
    body: bytes | None = None
    attempts: int = 1
    task_id: str | None = None


@dataclass(slots=True)
class _InFlight:
    """A call sent and not yet answered."""

    ref: ObjectRef[Any] | ObjectRefGenerator
    function_name: str
    # Kept to resend the call after a restart: always if the actor never
    # started it, else as max_task_retries allows.
    body: bytes | None = None
    attempts: int = 1


@dataclass(slots=True)
class ActorChannel:
    """This process's connection to one actor."""

    actor_id: str
    state: ChannelState = ChannelState.CONNECTING
    sock: socket.socket | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    outbox: collections.deque[_Outgoing] = field(default_factory=collections.deque)
    pending: dict[int, _InFlight] = field(default_factory=dict)
    reader: FrameReader = field(default_factory=FrameReader)
    # Held by whoever reads the socket: the I/O thread, or a thread in
    # rigd.get reading its own reply (see Runtime.wait).
    read_lock: threading.Lock = field(default_factory=threading.Lock)
    call_ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    error: BaseException | None = None
    # The last handle went away while calls still waited to be sent (the
    # actor was starting): tell the head once they are sent, not before, or
    # it would end the actor under them.
    release_due: bool = False
    released: bool = False
    max_task_retries: int = 0
    incarnation: int = 0
    #: Whether the actor runs each submitter's calls in order (a serial
    #: actor). Threaded and async actors promise no order: a call whose ref
    #: arguments are ready leaves at once, past calls still waiting for theirs.
    ordered: bool = True
    #: Calls of an unordered channel still waiting for ref arguments.
    parked: dict[int, _Outgoing] = field(default_factory=dict)
    # Frames written to the socket but not yet taken by the kernel. Nothing
    # ever blocks sending to an actor: what does not fit waits here, and the
    # I/O thread sends it when the socket is writable (EPOLLOUT), reading the
    # actor's replies meanwhile. (A blocking send on the I/O thread, with the
    # actor blocked sending replies nobody read, wedged the process.)
    wbuf: collections.deque[bytes | memoryview] = field(default_factory=collections.deque)
    woff: int = 0
    wbytes: int = 0
    #: The events the I/O thread's epoll watches on ``sock``.
    mask: int = 0
    #: A thread in rigd.get reads the socket itself (see Runtime.wait).
    reading_elsewhere: bool = False
    #: Callers held back while ``wbytes`` is above HIGH_WATER wait on this.
    room: threading.Condition | None = None

    def unsent(self) -> bool:
        """Whether calls or bytes still wait to leave this process."""
        return bool(self.outbox or self.parked or self.wbuf)


class Runtime:
    """The per-process side of a rigd session.

    Args:
        session_dir: the directory of the session's socket files.
        shm_prefix: the prefix of the session's shared-memory segments.
        namespace: the namespace of named actors created here by default.
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
        self._on_head_message = on_head_message
        self._channels: dict[str, ActorChannel] = {}
        self._channels_lock = threading.Lock()
        self._handle_counts: dict[str, int] = {}
        self._table_lock = threading.Lock()
        self._dropped: collections.deque[str] = collections.deque()
        self._head_pending: dict[int, ObjectRef[Any]] = {}
        self._head_ids = itertools.count(1)
        self._head_lock = threading.Lock()
        self._head_reader = FrameReader()
        self._epoll = select.epoll()
        self._fd_handlers: dict[int, Callable[[], None]] = {}
        self._fd_writers: dict[int, Callable[[], None]] = {}
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._io_actions: collections.deque[Callable[[], None]] = collections.deque()
        self.events = EventBuffer(on_first=self._wake)
        # Generator tasks: head request id -> the generator its items feed.
        self._head_streams: dict[int, ObjectRefGenerator] = {}
        self._task_ids = itertools.count(1)

        self._head = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._head.connect(os.path.join(session_dir, "head.sock"))
        self._send_head((int(Msg.HELLO), worker_id, os.getpid()))
        self._watch(self._head.fileno(), self._on_head_readable)
        self._watch(self._wake_r, self._on_wake)
        self._io_thread = threading.Thread(target=self._io_loop, name="rigd-io", daemon=True)
        self._io_thread.start()
        _ref.fetch_borrowed = self.fetch_borrowed
        _ref.cancel_borrowed = self.cancel_borrowed

    # -- head ----------------------------------------------------------------

    def _send_head(self, message: tuple[Any, ...]) -> None:
        frame = pack_frame(dumps(message, self.shm_prefix))
        with self._head_lock:
            self._head.sendall(frame)

    def head_request(self, kind: Msg, *args: Any) -> ObjectRef[Any]:
        """Send a request to the head; the ref gets the reply's payload."""
        if self.closed:
            raise RuntimeNotRunningError("the rigd runtime is shut down; call rigd.init() again")
        return self.head_request_with_id(kind, *args)[1]

    def head_request_with_id(self, kind: Msg, *args: Any) -> tuple[int, ObjectRef[Any]]:
        """Like ``head_request``, also returning the request's id."""
        if self.closed:
            raise RuntimeNotRunningError("the rigd runtime is shut down; call rigd.init() again")
        ref: ObjectRef[Any] = ObjectRef()
        req_id = next(self._head_ids)
        self._head_pending[req_id] = ref
        self._send_head((int(kind), req_id, *args))
        return req_id, ref

    def head_call(self, kind: Msg, *args: Any, timeout: float | None = 60) -> Any:
        """Send a request to the head and wait for its reply."""
        ref = self.head_request(kind, *args)
        if not ref._wait(timeout):
            raise RigdError(f"the rigd head did not answer {kind.name} within {timeout} s")
        return ref._result()

    def head_notice(self, kind: Msg, *args: Any) -> None:
        """Send a one-way notice to the head."""
        if not self.closed:
            self._send_head((int(kind), *args))

    def send_to_head(self, message: tuple[Any, ...]) -> None:
        """Send a worker's message (ACTOR_READY, TASK_DONE, ...) to the head."""
        self._send_head(message)

    def _on_head_readable(self) -> None:
        try:
            data = self._head.recv(RECV_SIZE)
        except OSError:
            data = b""
        if not data:
            self._on_head_lost()
            return
        for frame in self._head_reader.feed(data):
            message = loads(frame)
            if message[0] == _HEAD_REPLY:
                _, req_id, ok, payload = message
                ref = self._head_pending.pop(req_id, None)
                if ref is None:
                    continue
                if ok:
                    ref._set_value(payload)
                else:
                    ref._set_error(payload)
            elif message[0] == _HEAD_ITEM:
                stream = self._head_streams.get(message[1])
                if stream is not None:
                    stream._push(loads(message[2])[2])
            elif message[0] == _REF_WANTED:
                self._serve_lent_ref(message[1], message[2])
            elif message[0] == _REF_CANCEL_WANTED:
                self._cancel_lent_ref(message[1], message[2])
            elif self._on_head_message is not None:
                self._on_head_message(message)

    # -- refs passed nested, while pending (Ray's borrowed refs) -----------------

    def fetch_borrowed(self, ref: ObjectRef[Any]) -> None:
        """Ask the owner of ``ref`` (through the head) for its value; fill ``ref`` with it."""
        if self.closed:
            ref._set_error(RuntimeNotRunningError("the rigd runtime is shut down"))
            return
        reply = self.head_request(Msg.REF_GET, ref._id)

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
        self.head_notice(Msg.REF_CANCEL, ref_id, force)

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
            self.head_notice(Msg.REF_VALUE, token, False, dumps(error, self.shm_prefix))
            return

        def send(r: ObjectRef[Any]) -> None:
            ok = r._error is None
            try:
                body = dumps(r._value if ok else r._error, self.shm_prefix)
            except Exception as exc:  # noqa: BLE001 - boundary: the borrower gets the error
                ok, body = False, dumps(TypeError(f"{r!r} cannot be sent: {exc}"), "")
            try:
                self.head_notice(Msg.REF_VALUE, token, ok, body)
            except OSError:
                pass  # the session is ending

        ref._add_callback(send)

    def _on_head_lost(self) -> None:
        self._unwatch(self._head.fileno())
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
                self.head_notice(Msg.ACQUIRE, actor_id, token)

    def lend_handle(self, actor_id: str, token: str) -> None:
        """Tell the head a handle is on its way to another process."""
        self.head_notice(Msg.LEND, actor_id, token)

    def drop_handle(self, actor_id: str) -> None:
        """Note that a handle object died; safe to call from ``__del__``."""
        self._dropped.append(actor_id)
        self._wake()

    def _process_dropped(self) -> None:
        while self._dropped:
            actor_id = self._dropped.popleft()
            with self._table_lock:
                count = self._handle_counts.get(actor_id, 0) - 1
                if count > 0:
                    self._handle_counts[actor_id] = count
                    continue
                self._handle_counts.pop(actor_id, None)
                if self._close_channel(actor_id):
                    self.head_notice(Msg.RELEASE, actor_id)

    def _close_channel(self, actor_id: str) -> bool:
        """Close this process's channel to the actor; False if calls still wait
        to be sent (the head then hears of the release once they are)."""
        channel = self._channels.get(actor_id)
        if channel is None:
            return True
        with channel.lock:
            channel.released = True
            if channel.unsent() and channel.state is not ChannelState.DEAD:
                channel.release_due = True
                return False
            if channel.pending:
                return True  # replies still due: closed once they are in
            if channel.sock is not None:
                self._shut_channel_socket(channel)
        with self._channels_lock:
            if self._channels.get(actor_id) is channel:
                del self._channels[actor_id]
        return True

    def _shut_channel_socket(self, channel: ActorChannel) -> None:
        assert channel.sock is not None
        try:
            # Not waited for: an actor that cannot take it sees the EOF instead.
            channel.sock.send(pack_frame(dumps((_CLOSE,), "")), socket.MSG_DONTWAIT)
        except OSError:
            pass
        self._unwatch(channel.sock.fileno())
        channel.sock.close()
        channel.sock = None
        channel.state = ChannelState.DEAD
        channel.error = ActorDiedError("all handles to this actor were released")

    # -- calls -----------------------------------------------------------------

    def channel(self, actor_id: str, ordered: bool = True) -> ActorChannel:
        """Return this process's channel to ``actor_id``, opening it if needed.

        ``ordered``: the actor runs each submitter's calls in order (serial).
        """
        channel = self._channels.get(actor_id)
        if channel is not None:
            return channel
        with self._channels_lock:
            channel = self._channels.get(actor_id)
            if channel is None:
                channel = ActorChannel(actor_id, ordered=ordered)
                self._channels[actor_id] = channel
                ref = self.head_request(Msg.ACTOR_ADDRESS, actor_id)
                ref._add_callback(functools.partial(self._address_known, channel))
        return channel

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
        """
        if self.closed:
            raise RuntimeNotRunningError("the rigd runtime is shut down; call rigd.init() again")
        channel = self.channel(actor_id, ordered)
        ref: Any = ObjectRefGenerator() if streaming else ObjectRef()
        task_id = None
        if events:
            task_id = self.new_task_id()
            self.events.record(task_id, TaskState.SUBMITTED, function_name, actor_id)
        deps = _pending_refs(args, kwargs)
        if not deps:
            args, kwargs, failed = _resolve_refs(args, kwargs)
            if failed is not None:
                ref._set_error(failed)
                return ref
            with channel.lock:
                call_id = next(channel.call_ids)
                ref._canceller = functools.partial(self._cancel_call, channel, call_id, ref)
                # Serialized here, on the caller's thread, so a bad argument
                # raises at the call site even while the actor is starting.
                body = dumps(
                    (_CALL, call_id, method, args, kwargs, group, task_id), self.shm_prefix
                )
                if channel.state is ChannelState.OPEN and not channel.outbox:
                    channel.pending[call_id] = _InFlight(ref, function_name, body)
                    ref._source = channel
                    self._send_frame(channel, pack_frame(body))
                    full = channel.wbytes > HIGH_WATER
                elif channel.state is ChannelState.DEAD:
                    assert channel.error is not None
                    ref._set_error(channel.error)
                    full = False
                else:
                    channel.outbox.append(
                        _Outgoing(call_id, ref, method, function_name, args, kwargs, group, 0, body)
                    )
                    full = False
            if full:
                self._wait_for_room(channel)  # back-pressure, outside the lock
            return ref
        check_picklable((_placeholders(args), _placeholders_kw(kwargs)))
        with channel.lock:
            call_id = next(channel.call_ids)
            ref._canceller = functools.partial(self._cancel_call, channel, call_id, ref)
            out = _Outgoing(
                call_id,
                ref,
                method,
                function_name,
                args,
                kwargs,
                group=group,
                waiting=len(deps),
                task_id=task_id,
            )
            if channel.ordered:
                channel.outbox.append(out)
            else:
                channel.parked[call_id] = out
        for dep in deps:
            dep._add_callback(functools.partial(self._dep_done, channel, out))
        return ref

    def _cancel_call(
        self, channel: ActorChannel, call_id: int, ref: ObjectRef[Any], force: bool = False
    ) -> None:
        """Drop the call if it has not left this process, else ask the actor to."""
        if force:
            raise ValueError(
                "force=True is not supported for actor calls (as in Ray): it would kill the "
                "actor; use rigd.kill(handle) to end the actor, or cancel without force"
            )
        with channel.lock:
            out = channel.parked.pop(call_id, None)
            if out is None:
                out = next((o for o in channel.outbox if o.call_id == call_id), None)
                if out is not None:
                    channel.outbox.remove(out)
            if out is not None:
                ref._set_error(
                    TaskCancelledError(
                        f"the call {out.function_name} was cancelled with rigd.cancel"
                    )
                )
                return
            if channel.sock is None or call_id not in channel.pending:
                return
            self._send_frame(channel, pack_frame(dumps((_CANCEL, call_id), "")))

    def _address_known(self, channel: ActorChannel, ref: ObjectRef[Any]) -> None:
        self._run_on_io(functools.partial(self._on_address, channel, ref))

    def _dep_done(self, channel: ActorChannel, out: _Outgoing, _dep: ObjectRef[Any]) -> None:
        with channel.lock:
            out.waiting -= 1
            ready = out.waiting == 0
            if ready and channel.parked.pop(out.call_id, None) is not None:
                channel.outbox.append(out)  # unordered: leaves now, past waiting calls
        if ready:
            self._run_on_io(lambda: self._flush(channel))

    def _flush(self, channel: ActorChannel) -> None:
        """Send what can leave the outbox, in order (I/O thread)."""
        try:
            self._send_outbox(channel)
        finally:
            self._after_sending(channel)

    def _after_sending(self, channel: ActorChannel) -> None:
        """Tell the head of a release that waited for the calls to leave (I/O thread)."""
        if channel.release_due and not channel.unsent():
            channel.release_due = False
            self.head_notice(Msg.RELEASE, channel.actor_id)
            self._close_if_released(channel)

    def _send_frame(self, channel: ActorChannel, frame: bytes | memoryview) -> None:
        """Send ``frame`` to the actor without blocking; queue what does not fit.

        The caller holds ``channel.lock``. Frames leave in the order given.
        """
        sock = channel.sock
        if sock is None:
            return  # the actor is gone; its reader has failed (or fails) the refs
        if not channel.wbuf:
            try:
                sent = sock.send(frame, socket.MSG_DONTWAIT)
            except BlockingIOError:
                sent = 0
            except OSError:
                return  # the actor is gone; the reader sees the EOF and fails the refs
            if sent == len(frame):
                return
            frame = memoryview(frame)[sent:]
        channel.wbuf.append(frame)
        channel.wbytes += len(frame)
        self._set_mask(channel)

    def _pump(self, channel: ActorChannel) -> None:
        """Send what the kernel takes of ``wbuf`` now; the caller holds ``channel.lock``."""
        sock = channel.sock
        while channel.wbuf and sock is not None:
            first = channel.wbuf[0]
            buffers = [memoryview(first)[channel.woff :] if channel.woff else first]
            buffers.extend(itertools.islice(channel.wbuf, 1, 64))
            try:
                sent = sock.sendmsg(buffers, (), socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                self._drop_unsent(channel)  # the actor is gone; the reader sees the EOF
                break
            channel.wbytes -= sent
            sent += channel.woff
            while channel.wbuf and sent >= len(channel.wbuf[0]):
                sent -= len(channel.wbuf.popleft())
            channel.woff = sent
        self._set_mask(channel)
        if channel.room is not None and channel.wbytes <= LOW_WATER:
            channel.room.notify_all()

    def _drop_unsent(self, channel: ActorChannel) -> None:
        channel.wbuf.clear()
        channel.woff = 0
        channel.wbytes = 0
        if channel.room is not None:
            channel.room.notify_all()

    def _set_mask(self, channel: ActorChannel) -> None:
        """Watch the socket for what the I/O thread must do; the caller holds the lock."""
        sock = channel.sock
        if sock is None:
            return
        mask = (0 if channel.reading_elsewhere else _EPOLLIN) | (_EPOLLOUT if channel.wbuf else 0)
        if mask != channel.mask:
            channel.mask = mask
            try:
                self._epoll.modify(sock.fileno(), mask)
            except (OSError, ValueError):
                pass  # closed meanwhile

    def _wait_for_room(self, channel: ActorChannel) -> None:
        """Back-pressure: hold a caller while too much waits to reach the actor."""
        if threading.current_thread() is self._io_thread:
            return  # the I/O thread never waits: it is what empties the queue
        with channel.lock:
            if channel.room is None:
                channel.room = threading.Condition(channel.lock)
            while (
                channel.wbytes > LOW_WATER
                and channel.state is ChannelState.OPEN
                and not self.closed
            ):
                channel.room.wait(1.0)

    def _on_actor_writable(self, channel: ActorChannel) -> None:
        with channel.lock:
            self._pump(channel)
        self._after_sending(channel)

    def _send_outbox(self, channel: ActorChannel) -> None:
        with channel.lock:
            if channel.state is ChannelState.DEAD and channel.parked:
                channel.outbox.extend(channel.parked.values())
                channel.parked.clear()
            while channel.outbox:
                out = channel.outbox[0]
                if channel.state is ChannelState.DEAD:
                    channel.outbox.popleft()
                    assert channel.error is not None
                    out.ref._set_error(channel.error)
                    continue
                if channel.state is not ChannelState.OPEN or out.waiting:
                    return
                channel.outbox.popleft()
                body = out.body
                if body is None:
                    args, kwargs, failed = _resolve_refs(out.args, out.kwargs)
                    if failed is not None:
                        out.ref._set_error(failed)
                        continue
                    try:
                        body = dumps(
                            (_CALL, out.call_id, out.method, args, kwargs, out.group, out.task_id),
                            self.shm_prefix,
                        )
                    except Exception as exc:  # noqa: BLE001 - boundary: the ref gets the error
                        out.ref._set_error(exc)
                        continue
                channel.pending[out.call_id] = _InFlight(
                    out.ref,
                    out.function_name,
                    body,
                    out.attempts,
                )
                out.ref._source = channel
                self._send_frame(channel, pack_frame(body))

    def _on_address(self, channel: ActorChannel, ref: ObjectRef[Any]) -> None:
        """The head answered where the actor listens, or why it is dead (I/O thread)."""
        if ref._error is not None:
            self._mark_dead(channel, ref._error)
            return
        path, channel.max_task_retries, channel.incarnation = ref._value
        if channel.released and not channel.unsent():
            return  # every handle went away while the actor was starting
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            error = ActorDiedError(f"the actor cannot be reached at {path}: {exc}")
            self._mark_dead(channel, error)
            return
        with channel.lock:
            # Watched before it is published, so a caller's _set_mask finds it registered.
            fd = sock.fileno()
            self._watch(fd, functools.partial(self._on_actor_readable, channel))
            self._fd_writers[fd] = functools.partial(self._on_actor_writable, channel)
            channel.mask = _EPOLLIN
            channel.sock = sock
            channel.state = ChannelState.OPEN
        self._flush(channel)

    def _on_actor_readable(self, channel: ActorChannel) -> None:
        if not channel.read_lock.acquire(blocking=False):
            return  # a thread in rigd.get is reading this socket itself
        try:
            sock = channel.sock
            if sock is None:
                return
            data = recv_nowait(sock)
            if data is None:
                return
            if not data:
                self._on_actor_lost(channel)
                return
            self._dispatch_replies(channel, data)
        finally:
            channel.read_lock.release()
        self._close_if_released(channel)

    def _close_if_released(self, channel: ActorChannel) -> None:
        """Close a channel whose handles are gone once nothing is due on it (I/O thread)."""
        if not channel.released or channel.pending or channel.unsent():
            return
        with self._channels_lock:
            if self._channels.get(channel.actor_id) is channel:
                del self._channels[channel.actor_id]
        with channel.lock:
            if channel.sock is not None and not channel.reading_elsewhere:
                self._shut_channel_socket(channel)

    def _dispatch_replies(self, channel: ActorChannel, data: bytes) -> None:
        for frame in channel.reader.feed(data):
            message = loads(frame)
            kind = message[0]
            if kind == _REPLY_ITEM:
                streamed = channel.pending.get(message[1])
                if streamed is not None and isinstance(streamed.ref, ObjectRefGenerator):
                    streamed.ref._push(message[2])
                continue
            entry = channel.pending.pop(message[1], None)
            if entry is None:
                continue
            ref = entry.ref
            if kind == _REPLY_OK:
                if isinstance(ref, ObjectRefGenerator):
                    ref._push(message[2])  # a streaming call of a plain method
                    ref._end()
                else:
                    ref._set_value(message[2])
            elif kind == _REPLY_END and isinstance(ref, ObjectRefGenerator):
                ref._end()
            elif kind == _REPLY_ERR:
                ref._set_error(reply_error_to_exception(message[2]))
            else:
                ref._set_error(
                    RigdError(f"{entry.function_name} answered with an unexpected message {kind}")
                )

    def wait(self, ref: ObjectRef[Any], timeout: float | None) -> bool:
        """Wait for ``ref``; read its reply on this thread when possible.

        A sync call's round trip then wakes one thread in this process
        instead of two (the I/O thread, then the waiter): about 25 us less on
        a 2-core VM. The I/O thread stops watching the socket meanwhile
        (``epoll`` events 0) and picks up anything left afterwards.
        """
        channel = ref._source
        if (
            channel is None
            or channel.state is not ChannelState.OPEN
            or threading.current_thread() is self._io_thread
            or not channel.read_lock.acquire(blocking=False)
        ):
            return ref._wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            sock = channel.sock
            if sock is None:
                return ref._wait(timeout)
            fd = sock.fileno()
            with channel.lock:
                channel.reading_elsewhere = True
                self._set_mask(channel)
            try:
                poller = select.poll()
                poller.register(fd, select.POLLIN)
                while not ref._done:
                    if deadline is None:
                        ms = None
                    else:
                        ms = max(0, int((deadline - time.monotonic()) * 1000))
                    if not poller.poll(ms) and deadline is not None and ms == 0:
                        return False
                    data = recv_nowait(sock)
                    if data is None:
                        continue
                    if not data:
                        break  # the actor died: the I/O thread handles the EOF
                    self._dispatch_replies(channel, data)
            finally:
                with channel.lock:
                    channel.reading_elsewhere = False
                    if not self.closed:
                        self._set_mask(channel)
        finally:
            channel.read_lock.release()
            if channel.released:
                # Its handles are gone and this thread read the last reply:
                # the I/O thread did not see it, so it must close the channel.
                self._run_on_io(functools.partial(self._close_if_released, channel))
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return ref._wait(left)

    def _on_actor_lost(self, channel: ActorChannel) -> None:
        """The actor's socket closed: ask the head why, then fail what is due."""
        assert channel.sock is not None
        self._unwatch(channel.sock.fileno())
        channel.sock.close()
        with channel.lock:
            channel.sock = None
            channel.state = ChannelState.DYING
            self._drop_unsent(channel)
        ref = self.head_request(Msg.DEATH_REASON, channel.actor_id, channel.incarnation)

        def on_reason(r: ObjectRef[Any]) -> None:
            if r._error is not None:
                self._run_on_io(lambda: self._mark_dead(channel, r._error))  # type: ignore[arg-type]
                return
            restarting, reason = r._value
            if restarting:
                self._run_on_io(lambda: self._on_restart(channel, reason))
            else:
                self._run_on_io(lambda: self._mark_dead(channel, ActorDiedError(reason)))

        ref._add_callback(on_reason)

    def _on_restart(self, channel: ActorChannel, reason: str) -> None:
        """The actor is restarting: resend what may be retried, fail the rest, reconnect."""
        limit = channel.max_task_retries
        # Calls the dead process never started (sent into its socket as it
        # died) go to the new one whatever max_task_retries says, as Ray
        # queues calls made while an actor restarts.
        started = last_started(
            table_path(self.session_dir, channel.actor_id, channel.incarnation), os.getpid()
        )
        with channel.lock:
            in_flight = sorted(channel.pending.items())
            channel.pending.clear()
            resend = []
            for call_id, entry in in_flight:
                never_started = started != UNKNOWN and call_id > started
                retried = limit == -1 or entry.attempts <= limit
                if entry.body is not None and (never_started or retried):
                    # A call the dead actor never started is not a retry.
                    attempts = entry.attempts if never_started else entry.attempts + 1
                    resend.append(
                        _Outgoing(
                            call_id,
                            entry.ref,
                            "",
                            entry.function_name,
                            (),
                            {},
                            body=entry.body,
                            attempts=attempts,
                        )
                    )
                else:
                    entry.ref._set_error(
                        ActorDiedError(
                            f"{reason}; the call {entry.function_name} was in flight and is not "
                            "retried (see max_task_retries)"
                        )
                    )
            channel.outbox.extendleft(reversed(resend))
            channel.state = ChannelState.CONNECTING
            channel.reader = FrameReader()
        address = self.head_request(Msg.ACTOR_ADDRESS, channel.actor_id)
        address._add_callback(functools.partial(self._address_known, channel))

    def _mark_dead(self, channel: ActorChannel, error: BaseException) -> None:
        with channel.lock:
            channel.state = ChannelState.DEAD
            channel.error = error
            pending = list(channel.pending.values())
            channel.pending.clear()
        for entry in pending:
            entry.ref._set_error(error)
        self._flush(channel)

    # -- tasks -----------------------------------------------------------------

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
        ref: Any = ObjectRefGenerator() if streaming else ObjectRef()
        task_id = None
        if events:
            task_id = self.new_task_id()
            self.events.record(task_id, TaskState.SUBMITTED, function_name)
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
            resolved_args, resolved_kwargs, failed = _resolve_refs(args, kwargs)
            if failed is not None:
                ref._set_error(failed)
                return
            try:
                body = dumps((resolved_args, resolved_kwargs), self.shm_prefix)
            except Exception as exc:  # noqa: BLE001 - boundary: the task's ref gets the error
                ref._set_error(exc)
                return
            req_id, reply = self._submit_task_request(
                ref,
                Msg.SUBMIT_TASK,
                fn_id,
                fn_body,
                function_name,
                body,
                num_cpus,
                max_retries,
                task_id,
                num_gpus,
                streaming,
                # What the submitter's context holds reaches the task: an
                # actor it names lands in the submitter's namespace (Ray's rule).
                self.namespace,
                retry_exceptions,
            )
            ref._canceller = functools.partial(self._cancel_task, req_id)
            reply._add_callback(lambda r: self._task_finished(task_id, ref, r))

        deps = _pending_refs(args, kwargs)
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
                self._run_on_io(send)

        for dep in deps:
            dep._add_callback(dep_done)
        return ref

    def _cancel_task(self, req_id: int, force: bool = False) -> None:
        self.head_notice(Msg.CANCEL_TASK, req_id, force)

    # -- the I/O thread ----------------------------------------------------------

    def _run_on_io(self, action: Callable[[], None]) -> None:
        if threading.current_thread() is self._io_thread:
            action()
        else:
            self._io_actions.append(action)
            self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, OSError, ValueError):
            pass  # already woken, or shutting down

    def _on_wake(self) -> None:
        try:
            os.read(self._wake_r, 4096)
        except BlockingIOError:
            pass
        while self._io_actions:
            self._io_actions.popleft()()
        self._process_dropped()

    def _watch(self, fd: int, handler: Callable[[], None]) -> None:
        self._fd_handlers[fd] = handler
        self._epoll.register(fd, select.EPOLLIN)

    def _unwatch(self, fd: int) -> None:
        self._fd_handlers.pop(fd, None)
        self._fd_writers.pop(fd, None)
        try:
            self._epoll.unregister(fd)
        except (OSError, ValueError):
            pass

    def new_task_id(self) -> str:
        """A task id unique in the session: this process's pid and a counter."""
        return f"{os.getpid():x}-t{next(self._task_ids):x}"

    def flush_events(self) -> None:
        """Send the buffered task events to the head."""
        if self.events and not self.closed:
            try:
                self.head_notice(Msg.TASK_EVENTS, self.events.drain())
            except OSError:
                pass  # the head is gone; so is the task log

    def _submit_task_request(self, ref: Any, kind: Msg, *args: Any) -> tuple[int, ObjectRef[Any]]:
        # Registered before sending, so that no item can arrive unclaimed.
        if not isinstance(ref, ObjectRefGenerator):
            return self.head_request_with_id(kind, *args)
        req_id = next(self._head_ids)
        reply: ObjectRef[Any] = ObjectRef()
        self._head_pending[req_id] = reply
        self._head_streams[req_id] = ref

        def forget(_: ObjectRef[Any]) -> None:
            self._head_streams.pop(req_id, None)

        reply._add_callback(forget)
        self._send_head((int(kind), req_id, *args))
        return req_id, reply

    def _task_finished(
        self, task_id: str | None, ref: ObjectRef[Any], reply: ObjectRef[Any]
    ) -> None:
        error = _finish_task_ref(ref, reply)
        if task_id is not None:
            if error is None:
                self.events.record(task_id, TaskState.FINISHED)
            else:
                self.events.record(task_id, TaskState.FAILED, error=type(error).__name__)

    def _io_loop(self) -> None:
        while not self.closed:
            try:
                events = self._epoll.poll(FLUSH_S if self.events else -1)
            except InterruptedError:
                continue
            if self.events and time.monotonic() - self.events.last_flush >= FLUSH_S:
                self.flush_events()
            for fd, mask in events:
                if self.closed:
                    break
                try:
                    if mask & _EPOLLOUT:
                        writer = self._fd_writers.get(fd)
                        if writer is not None:
                            writer()
                    if mask & ~_EPOLLOUT:
                        handler = self._fd_handlers.get(fd)
                        if handler is not None:
                            handler()
                except Exception:
                    log.exception("rigd I/O thread: error while handling a connection")

    # -- shutdown ----------------------------------------------------------------

    def _fail_everything(self, error: BaseException) -> None:
        for ref in list(self._head_pending.values()):
            ref._set_error(error)
        self._head_pending.clear()
        with self._channels_lock:
            channels = list(self._channels.values())
        for channel in channels:
            with channel.lock:
                pending = list(channel.pending.values())
                channel.pending.clear()
                outbox = [*channel.outbox, *channel.parked.values()]
                channel.outbox.clear()
                channel.parked.clear()
                self._drop_unsent(channel)
                channel.state = ChannelState.DEAD
                channel.error = error
            for entry in pending:
                entry.ref._set_error(error)
            for out in outbox:
                out.ref._set_error(error)

    def close(self) -> None:
        """Stop the I/O thread and close every connection."""
        if self.closed:
            return
        self.closed = True
        self._wake()
        if threading.current_thread() is not self._io_thread:
            self._io_thread.join(timeout=5)
        self._fail_everything(RuntimeNotRunningError("the rigd runtime was shut down"))
        self._head.close()
        for channel in list(self._channels.values()):
            if channel.sock is not None:
                channel.sock.close()
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)


def _placeholders(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(None if type(a) is ObjectRef else a for a in args)


def _placeholders_kw(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: None if type(v) is ObjectRef else v for k, v in kwargs.items()}


def _pending_refs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[ObjectRef[Any]]:
    deps = [a for a in args if type(a) is ObjectRef and not a._done]
    if kwargs:
        deps += [v for v in kwargs.values() if type(v) is ObjectRef and not v._done]
    return deps


def _resolve_refs(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any], BaseException | None]:
    """Replace top-level refs by their values (all are done by now)."""
    if any(type(a) is ObjectRef for a in args):
        resolved = []
        for a in args:
            if type(a) is ObjectRef:
                if a._error is not None:
                    return args, kwargs, a._error
                resolved.append(a._value)
            else:
                resolved.append(a)
        args = tuple(resolved)
    if kwargs and any(type(v) is ObjectRef for v in kwargs.values()):
        new_kwargs = {}
        for k, v in kwargs.items():
            if type(v) is ObjectRef:
                if v._error is not None:
                    return args, kwargs, v._error
                new_kwargs[k] = v._value
            else:
                new_kwargs[k] = v
        kwargs = new_kwargs
    return args, kwargs, None


def _finish_task_ref(ref: Any, reply: ObjectRef[Any]) -> BaseException | None:
    if reply._error is not None:
        ref._set_error(reply._error)
        return reply._error
    message = loads(reply._value)
    if message[0] == _REPLY_END:
        if isinstance(ref, ObjectRefGenerator):
            ref._end()
            return None
        unexpected = RigdError("the task streamed items, but its caller expected one value")
        ref._set_error(unexpected)
        return unexpected
    if message[0] == _REPLY_OK:
        if isinstance(ref, ObjectRefGenerator):
            ref._push(message[2])
            ref._end()
        else:
            ref._set_value(message[2])
        return None
    error = reply_error_to_exception(message[2])
    ref._set_error(error)
    return error
