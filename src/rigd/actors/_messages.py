"""The kinds of message the runtime's processes exchange.

Messages are tuples whose first item is a ``Msg`` value (sent as a plain
int: pickling an enum member costs a name lookup on every message). This
module is the one definition of the kinds; the control plane's records, one
per kind, and their encoding are in ``_protocol``. The hot path's messages
(``CALL`` and its replies) stay plain tuples, built and read in
``_channel``, ``_actor_server`` and ``_call_replies`` only.

Three conversations, each on its own Unix stream socket:

- caller -> actor (the hot path): ``CALL``, answered by ``REPLY_OK`` or
  ``REPLY_ERR`` on the same socket, in order; ``CLOSE`` says the caller holds
  no more handles to that actor.
- any process -> head: requests with an id (``CREATE_ACTOR``, ``GET_ACTOR``,
  ``ACTOR_ADDRESS``, ``SUBMIT_TASK``, ...), answered by ``HEAD_REPLY``, and
  one-way notices (``ACQUIRE``, ``RELEASE``, ``LEND``).
- head -> worker: ``START_ACTOR``, ``RUN_TASK``, ``TERMINATE``; answered by
  ``ACTOR_READY``, ``ACTOR_FAILED``, ``TASK_DONE``, ``EXITING``.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum

__all__ = [
    "CALL",
    "CANCEL",
    "CLOSE",
    "FINAL_REPLIES",
    "HEAD_ITEM",
    "HEAD_REPLY",
    "REF_CANCEL_WANTED",
    "REF_WANTED",
    "REPLY_END",
    "REPLY_ERR",
    "REPLY_ITEM",
    "REPLY_OK",
    "ExitKind",
    "Msg",
    "TerminateMode",
]


class Msg(IntEnum):
    """The first item of every message."""

    # caller <-> actor
    CALL = 1
    REPLY_OK = 2
    REPLY_ERR = 3
    CLOSE = 4
    CANCEL = 5
    REPLY_ITEM = 6
    REPLY_END = 7
    # any process -> head (requests carry an id)
    HELLO = 10
    CREATE_ACTOR = 11
    GET_ACTOR = 12
    ACTOR_ADDRESS = 13
    KILL = 14
    SUBMIT_TASK = 15
    DEATH_REASON = 16
    LIST_ACTORS = 17
    CANCEL_TASK = 18
    LIST_TASKS = 19
    REF_GET = 26  # a borrower asks for the value of a pending ref another process owns
    REF_CANCEL = 27  # a borrower cancels a pending ref another process owns (one-way)
    RESOURCES = 28  # the session's CPUs and GPUs: total and free (Ray's *_resources())
    # any process -> head (one-way)
    ACQUIRE = 20
    RELEASE = 21
    LEND = 22
    BLOCKED = 23
    UNBLOCKED = 24
    TASK_EVENTS = 25
    # head -> process
    HEAD_REPLY = 30
    HEAD_ITEM = 31
    REF_WANTED = 32  # head -> the ref's owner: send its value once it has one
    REF_CANCEL_WANTED = 33  # head -> the ref's owner: cancel the call that fills it
    # head -> worker
    START_ACTOR = 40
    RUN_TASK = 41
    TERMINATE = 42
    # worker -> head
    ACTOR_READY = 50
    ACTOR_FAILED = 51
    TASK_DONE = 52
    EXITING = 53
    TASK_ITEM = 54
    REF_VALUE = 55  # owner -> head: the value (or error) a REF_WANTED asked for


class TerminateMode(StrEnum):
    """How the head asks an actor to end."""

    #: Every handle is gone: serve each caller until it closes, then end.
    DRAIN = "drain"
    #: Requested (``__rigd_terminate__``, creator died, shutdown): finish the
    #: call in progress, fail the rest, run ``__rigd_shutdown__``, end.
    PROMPT = "prompt"


class ExitKind(StrEnum):
    """Why an actor's process ended, as the head records it."""

    GRACEFUL = "graceful"
    EXIT_ACTOR = "exit_actor"
    KILLED = "killed"
    CRASHED = "crashed"
    CONSTRUCTOR_FAILED = "constructor_failed"
    CREATOR_DIED = "creator_died"
    SHUTDOWN = "shutdown"


# -- the kinds as plain ints, the one definition every process uses ------------
# (sent as ints: pickling an enum member costs a name lookup per message)

CALL = int(Msg.CALL)
REPLY_OK = int(Msg.REPLY_OK)
REPLY_ERR = int(Msg.REPLY_ERR)
CLOSE = int(Msg.CLOSE)
CANCEL = int(Msg.CANCEL)
REPLY_ITEM = int(Msg.REPLY_ITEM)
REPLY_END = int(Msg.REPLY_END)
HEAD_REPLY = int(Msg.HEAD_REPLY)
HEAD_ITEM = int(Msg.HEAD_ITEM)
REF_WANTED = int(Msg.REF_WANTED)
REF_CANCEL_WANTED = int(Msg.REF_CANCEL_WANTED)
#: The replies that end a call (a generator method's items come before).
FINAL_REPLIES = (REPLY_OK, REPLY_ERR, REPLY_END)
