"""Calls from this process to actors: opening a channel per actor, sending
calls (once their ref arguments are ready), cancelling them, reading
replies, and what happens when an actor's process dies: resend after a
restart as ``max_task_retries`` allows, or fail the calls with the reason.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from rigd._exceptions import ActorDiedError, RuntimeNotRunningError, TaskCancelledError
from rigd.actors._call_messages import CLOSE_MESSAGE, cancel_message
from rigd.actors._channel import (
    HIGH_WATER,
    ActorChannel,
    ChannelState,
    InFlight,
    Outgoing,
    call_body,
)
from rigd.actors._events import EventBuffer, TaskState
from rigd.actors._generator import ObjectRefGenerator
from rigd.actors._head_client import HeadClient
from rigd.actors._io_loop import EPOLLIN, IoLoop
from rigd.actors._ref import ObjectRef
from rigd.actors._ref_args import pending_refs, placeholders, placeholders_kw, resolve_refs
from rigd.actors._started import last_started, table_path
from rigd.actors._to_head import ActorAddress, DeathReason, Release
from rigd.actors._wire import check_picklable, dumps, pack_frame, recv_nowait

__all__ = ["ActorCalls"]


class ActorCalls:
    """This process's channels to actors, and the calls on them.

    Args:
        session_dir: the session's directory (actors' started-call tables).
        shm_prefix: the prefix of the session's shared-memory segments.
        io: the I/O thread that reads the channels.
        head: asks the head where an actor listens, and why it died.
        events: where call events are recorded.
        new_task_id: a new task id for a call's events.
    """

    def __init__(
        self,
        session_dir: str,
        shm_prefix: str,
        io: IoLoop,
        head: HeadClient,
        events: EventBuffer,
        new_task_id: Callable[[], str],
    ) -> None:
        self.closed = False
        self._session_dir = session_dir
        self._shm_prefix = shm_prefix
        self._io = io
        self._head = head
        self._events = events
        self._new_task_id = new_task_id
        self._channels: dict[str, ActorChannel] = {}
        self._lock = threading.Lock()

    def channel(self, actor_id: str, ordered: bool = True) -> ActorChannel:
        """Return this process's channel to ``actor_id``, opening it if needed.

        ``ordered``: the actor runs each submitter's calls in order (serial).
        """
        channel = self._channels.get(actor_id)
        if channel is not None:
            return channel
        with self._lock:
            channel = self._channels.get(actor_id)
            if channel is None:
                channel = ActorChannel(actor_id, self._io.modify, ordered=ordered)
                self._channels[actor_id] = channel
                ref = self._head.request(ActorAddress(actor_id))
                ref._add_callback(functools.partial(self._address_known, channel))
        return channel

    def submit(
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
        """Send a call to an actor; return the ref of its result (see ``Runtime.submit_call``)."""
        if self.closed:
            raise RuntimeNotRunningError("the rigd runtime is shut down; call rigd.init() again")
        channel = self.channel(actor_id, ordered)
        ref: Any = ObjectRefGenerator() if streaming else ObjectRef()
        task_id = None
        if events:
            task_id = self._new_task_id()
            self._events.record(task_id, TaskState.SUBMITTED, function_name, actor_id)
        deps = pending_refs(args, kwargs)
        if not deps:
            args, kwargs, failed = resolve_refs(args, kwargs)
            if failed is not None:
                ref._set_error(failed)
                return ref
            with channel.lock:
                call_id = next(channel.call_ids)
                ref._canceller = functools.partial(self._cancel, channel, call_id, ref)
                # Serialized here, on the caller's thread, so a bad argument
                # raises at the call site even while the actor is starting.
                body = call_body(call_id, method, args, kwargs, group, task_id, self._shm_prefix)
                if channel.state is ChannelState.OPEN and not channel.outbox:
                    channel.pending[call_id] = InFlight(ref, function_name, body)
                    ref._source = channel
                    channel.send_frame(pack_frame(body))
                    full = channel.wbytes > HIGH_WATER
                elif channel.state is ChannelState.DEAD:
                    assert channel.error is not None
                    ref._set_error(channel.error)
                    full = False
                else:
                    channel.outbox.append(
                        Outgoing(call_id, ref, method, function_name, args, kwargs, group, 0, body)
                    )
                    full = False
            if full and not self._io.on_thread():
                # Back-pressure, outside the lock. The I/O thread never waits:
                # it is what empties the queue.
                channel.wait_for_room(self._still_open)
            return ref
        check_picklable((placeholders(args), placeholders_kw(kwargs)))
        with channel.lock:
            call_id = next(channel.call_ids)
            ref._canceller = functools.partial(self._cancel, channel, call_id, ref)
            out = Outgoing(
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

    def _cancel(
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
            channel.send_frame(pack_frame(dumps(cancel_message(call_id), "")))

    def _address_known(self, channel: ActorChannel, ref: ObjectRef[Any]) -> None:
        self._io.run_soon(functools.partial(self._on_address, channel, ref))

    def _dep_done(self, channel: ActorChannel, out: Outgoing, _dep: ObjectRef[Any]) -> None:
        with channel.lock:
            out.waiting -= 1
            ready = out.waiting == 0
            if ready and channel.parked.pop(out.call_id, None) is not None:
                channel.outbox.append(out)  # unordered: leaves now, past waiting calls
        if ready:
            self._io.run_soon(lambda: self._flush(channel))

    def _flush(self, channel: ActorChannel) -> None:
        """Send what can leave the outbox, in order (I/O thread)."""
        try:
            channel.send_outbox(self._shm_prefix)
        finally:
            self._after_sending(channel)

    def _after_sending(self, channel: ActorChannel) -> None:
        """Tell the head of a release that waited for the calls to leave (I/O thread)."""
        if channel.release_due and not channel.unsent():
            channel.release_due = False
            self._head.notice(Release(channel.actor_id))
            self._close_if_released(channel)

    def _on_writable(self, channel: ActorChannel) -> None:
        with channel.lock:
            channel.pump()
        self._after_sending(channel)

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
            # Watched before it is published, so a caller's set_mask finds it registered.
            self._io.watch(
                sock.fileno(),
                functools.partial(self._on_readable, channel),
                functools.partial(self._on_writable, channel),
            )
            channel.mask = EPOLLIN
            channel.sock = sock
            channel.state = ChannelState.OPEN
        self._flush(channel)

    def _on_readable(self, channel: ActorChannel) -> None:
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
            channel.dispatch_replies(data)
        finally:
            channel.read_lock.release()
        self._close_if_released(channel)

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
            or self._io.on_thread()
            or not channel.read_lock.acquire(blocking=False)
        ):
            return ref._wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            sock = channel.sock
            if sock is None:
                return ref._wait(timeout)
            if not channel.read_until(sock, ref, deadline, self._still_open):
                return False
        finally:
            channel.read_lock.release()
            if channel.released:
                # Its handles are gone and this thread read the last reply:
                # the I/O thread did not see it, so it must close the channel.
                self._io.run_soon(functools.partial(self._close_if_released, channel))
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        return ref._wait(left)

    # -- the end of a channel ------------------------------------------------------

    def close_channel(self, actor_id: str) -> bool:
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
                self._shut_socket(channel)
        with self._lock:
            if self._channels.get(actor_id) is channel:
                del self._channels[actor_id]
        return True

    def _shut_socket(self, channel: ActorChannel) -> None:
        assert channel.sock is not None
        try:
            # Not waited for: an actor that cannot take it sees the EOF instead.
            channel.sock.send(pack_frame(dumps(CLOSE_MESSAGE, "")), socket.MSG_DONTWAIT)
        except OSError:
            pass
        self._io.unwatch(channel.sock.fileno())
        channel.sock.close()
        channel.sock = None
        channel.state = ChannelState.DEAD
        channel.error = ActorDiedError("all handles to this actor were released")

    def _close_if_released(self, channel: ActorChannel) -> None:
        """Close a channel whose handles are gone once nothing is due on it (I/O thread)."""
        if not channel.released or channel.pending or channel.unsent():
            return
        with self._lock:
            if self._channels.get(channel.actor_id) is channel:
                del self._channels[channel.actor_id]
        with channel.lock:
            if channel.sock is not None and not channel.reading_elsewhere:
                self._shut_socket(channel)

    def _on_actor_lost(self, channel: ActorChannel) -> None:
        """The actor's socket closed: ask the head why, then fail what is due."""
        assert channel.sock is not None
        self._io.unwatch(channel.sock.fileno())
        channel.sock.close()
        with channel.lock:
            channel.sock = None
            channel.state = ChannelState.DYING
            channel.drop_unsent()
        ref = self._head.request(DeathReason(channel.actor_id, channel.incarnation))

        def on_reason(r: ObjectRef[Any]) -> None:
            if r._error is not None:
                self._io.run_soon(lambda: self._mark_dead(channel, r._error))  # type: ignore[arg-type]
                return
            restarting, reason = r._value
            if restarting:
                self._io.run_soon(lambda: self._on_restart(channel, reason))
            else:
                self._io.run_soon(lambda: self._mark_dead(channel, ActorDiedError(reason)))

        ref._add_callback(on_reason)

    def _on_restart(self, channel: ActorChannel, reason: str) -> None:
        """The actor is restarting: resend what may be retried, fail the rest, reconnect."""
        # Calls the dead process never started go to the new one only when
        # max_task_retries allows resends (see ActorChannel.requeue).
        started = last_started(
            table_path(self._session_dir, channel.actor_id, channel.incarnation), os.getpid()
        )
        channel.requeue(started, reason)
        address = self._head.request(ActorAddress(channel.actor_id))
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

    def fail_all(self, error: BaseException) -> None:
        """Fail every call due or waiting to leave; every channel is dead."""
        with self._lock:
            channels = list(self._channels.values())
        for channel in channels:
            channel.fail(error)

    def _still_open(self) -> bool:
        return not self.closed

    def close_sockets(self) -> None:
        """Close every channel's socket (the I/O thread stopped)."""
        for channel in list(self._channels.values()):
            if channel.sock is not None:
                channel.sock.close()
