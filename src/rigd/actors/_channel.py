"""A process's connection to one actor (the hot path): the calls waiting to
leave, the calls in flight, sending without blocking, and the replies.

Each caller -> actor conversation is a Unix stream socket carrying ``CALL``
tuples one way and ``REPLY_OK`` / ``REPLY_ERR`` / ``REPLY_ITEM`` /
``REPLY_END`` the other (``_messages``); these stay plain tuples, built and
read here only, because a record per call costs measurable time.
"""

from __future__ import annotations

import collections
import itertools
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from rigd._exceptions import ActorDiedError, RigdError
from rigd.actors._call_messages import call_message
from rigd.actors._generator import ObjectRefGenerator
from rigd.actors._io_loop import EPOLLIN, EPOLLOUT
from rigd.actors._messages import REPLY_END, REPLY_ERR, REPLY_ITEM, REPLY_OK
from rigd.actors._ref import ObjectRef
from rigd.actors._ref_args import resolve_refs
from rigd.actors._replies import reply_error_to_exception
from rigd.actors._started import UNKNOWN
from rigd.actors._wire import FrameReader, dumps, loads, pack_frame, recv_nowait

__all__ = ["ActorChannel", "ChannelState", "InFlight", "Outgoing", "call_body"]

# Back-pressure: a caller that has this much queued for one actor waits until
# it falls to LOW_WATER (the I/O thread keeps sending and reading meanwhile),
# so a flood of calls holds a bounded amount of memory.
HIGH_WATER = 16 << 20
LOW_WATER = 4 << 20


def call_body(
    call_id: int,
    method: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    group: str | None,
    task_id: str | None,
    shm_prefix: str,
) -> bytes:
    """The serialized ``CALL`` message (what the actor's server reads)."""
    return dumps(call_message(call_id, method, args, kwargs, group, task_id), shm_prefix)


class ChannelState(Enum):
    """Where a process's connection to one actor stands."""

    CONNECTING = "connecting"
    OPEN = "open"
    DYING = "dying"
    DEAD = "dead"


@dataclass(slots=True)
class Outgoing:
    """A call not yet sent (waiting for the socket, or for ref arguments)."""

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
class InFlight:
    """A call sent and not yet answered."""

    ref: ObjectRef[Any] | ObjectRefGenerator
    function_name: str
    # Kept to resend the call after a restart: always if the actor never
    # started it, else as max_task_retries allows.
    body: bytes | None = None
    attempts: int = 1


@dataclass(slots=True)
class ActorChannel:
    """This process's connection to one actor.

    ``modify(fd, mask)`` sets the events the I/O thread watches on the socket.
    """

    actor_id: str
    modify: Callable[[int, int], None]
    state: ChannelState = ChannelState.CONNECTING
    sock: socket.socket | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    outbox: collections.deque[Outgoing] = field(default_factory=collections.deque)
    pending: dict[int, InFlight] = field(default_factory=dict)
    reader: FrameReader = field(default_factory=FrameReader)
    # Held by whoever reads the socket: the I/O thread, or a thread in
    # rigd.get reading its own reply (see ActorCalls.wait).
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
    parked: dict[int, Outgoing] = field(default_factory=dict)
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
    #: A thread in rigd.get reads the socket itself (see ActorCalls.wait).
    reading_elsewhere: bool = False
    #: Callers held back while ``wbytes`` is above HIGH_WATER wait on this.
    room: threading.Condition | None = None

    def unsent(self) -> bool:
        """Whether calls or bytes still wait to leave this process."""
        return bool(self.outbox or self.parked or self.wbuf)

    def send_frame(self, frame: bytes | memoryview) -> None:
        """Send ``frame`` to the actor without blocking; queue what does not fit.

        The caller holds ``lock``. Frames leave in the order given.
        """
        sock = self.sock
        if sock is None:
            return  # the actor is gone; its reader has failed (or fails) the refs
        if not self.wbuf:
            try:
                sent = sock.send(frame, socket.MSG_DONTWAIT)
            except BlockingIOError:
                sent = 0
            except OSError:
                return  # the actor is gone; the reader sees the EOF and fails the refs
            if sent == len(frame):
                return
            frame = memoryview(frame)[sent:]
        self.wbuf.append(frame)
        self.wbytes += len(frame)
        self.set_mask()

    def pump(self) -> None:
        """Send what the kernel takes of ``wbuf`` now; the caller holds ``lock``."""
        sock = self.sock
        while self.wbuf and sock is not None:
            first = self.wbuf[0]
            buffers = [memoryview(first)[self.woff :] if self.woff else first]
            buffers.extend(itertools.islice(self.wbuf, 1, 64))
            try:
                sent = sock.sendmsg(buffers, (), socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                self.drop_unsent()  # the actor is gone; the reader sees the EOF
                break
            self.wbytes -= sent
            sent += self.woff
            while self.wbuf and sent >= len(self.wbuf[0]):
                sent -= len(self.wbuf.popleft())
            self.woff = sent
        self.set_mask()
        if self.room is not None and self.wbytes <= LOW_WATER:
            self.room.notify_all()

    def drop_unsent(self) -> None:
        """Forget the bytes not yet sent (the actor is gone)."""
        self.wbuf.clear()
        self.woff = 0
        self.wbytes = 0
        if self.room is not None:
            self.room.notify_all()

    def set_mask(self) -> None:
        """Watch the socket for what the I/O thread must do; the caller holds ``lock``."""
        sock = self.sock
        if sock is None:
            return
        mask = (0 if self.reading_elsewhere else EPOLLIN) | (EPOLLOUT if self.wbuf else 0)
        if mask != self.mask:
            self.mask = mask
            self.modify(sock.fileno(), mask)

    def send_outbox(self, shm_prefix: str) -> None:
        """Send the calls that can leave the outbox, in order; fail them if dead."""
        with self.lock:
            if self.state is ChannelState.DEAD and self.parked:
                self.outbox.extend(self.parked.values())
                self.parked.clear()
            while self.outbox:
                out = self.outbox[0]
                if self.state is ChannelState.DEAD:
                    self.outbox.popleft()
                    assert self.error is not None
                    out.ref._set_error(self.error)
                    continue
                if self.state is not ChannelState.OPEN or out.waiting:
                    return
                self.outbox.popleft()
                body = out.body
                if body is None:
                    args, kwargs, failed = resolve_refs(out.args, out.kwargs)
                    if failed is not None:
                        out.ref._set_error(failed)
                        continue
                    try:
                        body = call_body(
                            out.call_id,
                            out.method,
                            args,
                            kwargs,
                            out.group,
                            out.task_id,
                            shm_prefix,
                        )
                    except Exception as exc:  # noqa: BLE001 - boundary: the ref gets the error
                        out.ref._set_error(exc)
                        continue
                self.pending[out.call_id] = InFlight(out.ref, out.function_name, body, out.attempts)
                out.ref._source = self
                self.send_frame(pack_frame(body))

    def wait_for_room(self, open_: Callable[[], bool]) -> None:
        """Back-pressure: hold a caller while too much waits to reach the actor."""
        with self.lock:
            if self.room is None:
                self.room = threading.Condition(self.lock)
            while self.wbytes > LOW_WATER and self.state is ChannelState.OPEN and open_():
                self.room.wait(1.0)

    def read_until(
        self,
        sock: socket.socket,
        ref: ObjectRef[Any],
        deadline: float | None,
        open_: Callable[[], bool],
    ) -> bool:
        """Read replies on the calling thread until ``ref`` is done; False on timeout.

        The caller holds ``read_lock``; the I/O thread stops watching the
        socket meanwhile (``open_()``: whether the runtime is still open, so
        that the watch is set back).
        """
        with self.lock:
            self.reading_elsewhere = True
            self.set_mask()
        try:
            poller = select.poll()
            poller.register(sock.fileno(), select.POLLIN)
            while not ref._done:
                ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
                if not poller.poll(ms) and deadline is not None and ms == 0:
                    return False
                data = recv_nowait(sock)
                if data is None:
                    continue
                if not data:
                    break  # the actor died: the I/O thread handles the EOF
                self.dispatch_replies(data)
        finally:
            with self.lock:
                self.reading_elsewhere = False
                if open_():
                    self.set_mask()
        return True

    def requeue(self, started: int, reason: str) -> None:
        """The actor restarts: queue the calls in flight to resend, fail the rest.

        ``started``: the last call id the dead process started (``UNKNOWN``
        if not known). With ``max_task_retries=0`` (the default: at most
        once, as in Ray) every call sent to the dead process fails, started
        or not, as Ray 2 fails the calls it pushed to an actor that died
        (its own ``test_actor_restart``); the caller learns that the
        instance its calls were for is gone. Otherwise a call the process
        started is resent while its attempts are within
        ``max_task_retries``, and one it never started is resent without
        spending an attempt. Calls made once the death is known wait in the
        outbox for the new process (Ray queues calls made while an actor
        restarts).
        """
        limit = self.max_task_retries
        with self.lock:
            in_flight = sorted(self.pending.items())
            self.pending.clear()
            resend = []
            for call_id, entry in in_flight:
                never_started = limit != 0 and started != UNKNOWN and call_id > started
                retried = limit == -1 or entry.attempts <= limit
                if entry.body is not None and (never_started or retried):
                    attempts = entry.attempts if never_started else entry.attempts + 1
                    resend.append(
                        Outgoing(
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
            self.outbox.extendleft(reversed(resend))
            self.state = ChannelState.CONNECTING
            self.reader = FrameReader()

    def fail(self, error: BaseException) -> None:
        """Fail every call due or waiting to leave; the channel is dead."""
        with self.lock:
            pending = list(self.pending.values())
            self.pending.clear()
            outbox = [*self.outbox, *self.parked.values()]
            self.outbox.clear()
            self.parked.clear()
            self.drop_unsent()
            self.state = ChannelState.DEAD
            self.error = error
        for entry in pending:
            entry.ref._set_error(error)
        for out in outbox:
            out.ref._set_error(error)

    def dispatch_replies(self, data: bytes) -> None:
        """Deliver the replies in ``data`` to their refs (by whoever holds ``read_lock``)."""
        for frame in self.reader.feed(data):
            message = loads(frame)
            kind = message[0]
            if kind == REPLY_ITEM:
                streamed = self.pending.get(message[1])
                if streamed is not None and isinstance(streamed.ref, ObjectRefGenerator):
                    streamed.ref._push(message[2])
                continue
            entry = self.pending.pop(message[1], None)
            if entry is None:
                continue
            ref = entry.ref
            if kind == REPLY_OK:
                if isinstance(ref, ObjectRefGenerator):
                    ref._push(message[2])  # a streaming call of a plain method
                    ref._end()
                else:
                    ref._set_value(message[2])
            elif kind == REPLY_END and isinstance(ref, ObjectRefGenerator):
                ref._end()
            elif kind == REPLY_ERR:
                ref._set_error(reply_error_to_exception(message[2]))
            else:
                ref._set_error(
                    RigdError(f"{entry.function_name} answered with an unexpected message {kind}")
                )
