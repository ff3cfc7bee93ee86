"""The start of an actor's process: its instance, and the executor of its kind.

``ActorServer`` (``_actor_server``) builds the actor with these before it
tells the head it is ready. A serial actor needs no executor: its calls run
inline on the main thread. Threaded and async actors hand calls to theirs
(``_executors``), imported only for them: asyncio and concurrent.futures
take 40 ms to import, most of a serial actor's start-up.
"""

from __future__ import annotations

import os
import pickle
from typing import TYPE_CHECKING, Any

from rigd.actors._context import GPU_IDS_ENV
from rigd.actors._from_head import StartActor
from rigd.actors._schema import ActorKind, ActorSchema
from rigd.actors._wire import loads

if TYPE_CHECKING:
    from rigd.actors._call_replies import CallReplies
    from rigd.actors._executors import Executor, OnExit

__all__ = ["construct_actor", "make_executor"]


def construct_actor(start: StartActor) -> tuple[Any, Any]:
    """Run the actor's constructor: ``(instance, event loop or None)``.

    An async actor's constructor sees the loop its default group's calls run
    on (``asyncio.get_event_loop()`` there is that loop, as in Ray).

    Raises:
        BaseException: whatever the constructor (or unpickling its class and
            arguments) raised; the caller reports it to the head.
    """
    if os.environ.get(GPU_IDS_ENV):
        # A GPU actor: make sure CUDA's devices are the GPUs assigned
        # (NVML and CUDA number them differently) before it runs.
        from rigd.gpu import check_visible_devices

        check_visible_devices()
    cls = pickle.loads(start.cls_body)
    args, kwargs = loads(start.args_body)
    loop: Any = None
    if start.methods.kind is ActorKind.ASYNC:
        import asyncio

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
    return cls(*args, **kwargs), loop


def make_executor(
    schema: ActorSchema, replies: CallReplies, on_exit: OnExit, loop: Any
) -> tuple[Executor | None, Any]:
    """The executor of a threaded or async actor and its ``Call`` type; ``(None, None)``
    for a serial one."""
    if schema.kind is ActorKind.SERIAL:
        return None, None
    from rigd.actors._executors import AsyncExecutor, Call, ThreadedExecutor

    if schema.kind is ActorKind.THREADED:
        return ThreadedExecutor(schema, replies.reply, on_exit), Call
    # The event loop runs on the main thread: a call goes from the socket to
    # its task with no hand-off between threads.
    return AsyncExecutor(schema, replies.reply, on_exit, replies.send, loop), Call
