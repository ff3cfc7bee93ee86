"""The whole error tree of rigd: every exception class the package defines.

::

    RigdError
    ├── TaskError             a method or task raised; also an instance of the
    │   │                     original exception's class
    │   └── TaskCancelledError  the call was cancelled with rigd.cancel (a
    │                         TaskError, so ``except RayTaskError`` catches it)
    ├── ActorDiedError        the actor's process is gone (killed, crashed,
    │                         exited, or its constructor failed)
    ├── WorkerCrashedError    the worker running a task died (after retries)
    ├── ObjectLostError       a ref's value can no longer be had
    │   └── OwnerDiedError    the process that owns a borrowed ref died before
    │                         its value was ready
    ├── GetTimeoutError       rigd.get or rigd.wait ran out of time (also a
    │                         TimeoutError)
    ├── RuntimeNotRunningError  the runtime was shut down under a call
    ├── ResourceUnavailableError  a resource request can never be met (also a
    │                         ValueError)
    ├── EndOfStream           a ring's writer closed it and every frame was read
    ├── RingClosedError       a ring endpoint was used after we closed it
    ├── RingBrokenError       the process at the other end of a ring died
    ├── RingLayoutError       a segment is not a ring of this layout version
    │                         (also a ValueError)
    ├── RecordingError        a recording stopped on a write error (also an
    │                         OSError); the file keeps what was written
    ├── WouldBlock            a *_nowait call would have had to wait
    ├── MessageTooLargeError  a message is over its link's max_message_bytes;
    │                         not sent (also a ValueError)
    ├── SerializationError    an object could not be pickled for a messages
    │                         link or the store (also a TypeError)
    ├── ObjectNotFoundError   improv's ``client.get``: nothing is stored under
    │                         the key (also a KeyError; rigd.compat.improv)
    ├── PipelineFileError     a pipeline file is wrong, nothing started (also a
    │   │                     ValueError; rigd.config)
    │   └── ServiceConfigError  a service config is wrong, the daemon did not
    │                         start (rigd.config)
    ├── PipelineFailedError   a pipeline's actor died for good (its restarts
    │                         spent, or too many failing steps; rigd.pipeline)
    ├── ExpressionError       a trigger expression is not allowed or not well
    │                         formed (also a ValueError; rigd.pipeline)
    ├── OptionValueError      an actor option's value is refused, naming the
    │                         option (also a ValueError; rigd.pipeline)
    ├── IllegalTransitionError  a run moved between states its transition table
    │                         does not list: a bug in rigd (also a RuntimeError;
    │                         rigd.pipeline)
    ├── TransitionError       the daemon's state does not allow the request
    │                         (HTTP 409; rigd.service)
    ├── InsufficientStorageError  the run cannot fit the data directory's free
    │                         space (HTTP 507; rigd.service)
    ├── NotFoundError         no such run or pipeline file (HTTP 404; also a
    │                         LookupError; rigd.service)
    ├── UnauthorizedError     no bearer token, or a wrong one (HTTP 401;
    │                         rigd.service)
    ├── UnsupportedMediaError  a request body of a Content-Type the endpoint
    │                         does not take (HTTP 415; rigd.service)
    ├── ApiError              the daemon answered the CLI's client with an error,
    │                         or could not be reached (rigd.service)
    └── CamerasUnavailableError  no camera can be listed: Aravis or PyGObject is
                              missing (also a RuntimeError; rigd.service)

Each class is defined once, in this package's module for its layer
(``_calls``: the actor runtime; ``_data``: rings, links, the store,
recordings; ``_service``: pipeline files, runs, the daemon; ``_root``:
``RigdError``), and exported here as ``rigd._exceptions.X``, which is also
its ``__module__`` (as trio's ``fixup_module_metadata`` does): tracebacks,
pickles and ``TaskError``'s class names read as before the split. The
modules that raise a class import it from here, and the public packages
(``rigd.exceptions``, ``rigd.config``, ``rigd.pipeline``, ``rigd.service``)
export it under the same name. A class that is also a built-in error
(``ValueError``, ``OSError``, ...) stays one, so ``except ValueError:``
written before it joined the tree still catches it.
``tests/test_error_tree.py`` walks the package and fails on an exception class
defined outside this tree.

Not errors, and so not in the tree: ``rigd.actor.exit_actor``'s
``ActorExit`` derives from ``BaseException`` (as ``SystemExit`` does), so an
actor's own ``except Exception:`` never swallows the exit; and
``rigd.pipeline.StopSignal``, a ``KeyboardInterrupt`` (SIGTERM or SIGHUP in
a ``with Pipeline(...)`` block), so that ``except Exception:`` never swallows
a stop request either.

Errors of the caller's own making (a wrong argument, an unknown option) are
plain ``TypeError``/``ValueError``/``AttributeError`` raised at the call site.
"""

from __future__ import annotations

from rigd._exceptions._calls import (
    ActorDiedError,
    GetTimeoutError,
    ObjectLostError,
    OwnerDiedError,
    ResourceUnavailableError,
    RuntimeNotRunningError,
    TaskCancelledError,
    TaskError,
    WorkerCrashedError,
)
from rigd._exceptions._data import (
    EndOfStream,
    MessageTooLargeError,
    ObjectNotFoundError,
    RecordingError,
    RingBrokenError,
    RingClosedError,
    RingLayoutError,
    SerializationError,
    WouldBlock,
)
from rigd._exceptions._root import RigdError
from rigd._exceptions._service import (
    ApiError,
    CamerasUnavailableError,
    ExpressionError,
    IllegalTransitionError,
    InsufficientStorageError,
    NotFoundError,
    OptionValueError,
    PipelineFailedError,
    PipelineFileError,
    ServiceConfigError,
    TransitionError,
    UnauthorizedError,
    UnsupportedMediaError,
)

__all__ = [
    "ActorDiedError",
    "ApiError",
    "CamerasUnavailableError",
    "EndOfStream",
    "ExpressionError",
    "GetTimeoutError",
    "IllegalTransitionError",
    "InsufficientStorageError",
    "MessageTooLargeError",
    "NotFoundError",
    "ObjectLostError",
    "ObjectNotFoundError",
    "OptionValueError",
    "OwnerDiedError",
    "PipelineFailedError",
    "PipelineFileError",
    "RecordingError",
    "ResourceUnavailableError",
    "RigdError",
    "RingBrokenError",
    "RingClosedError",
    "RingLayoutError",
    "RuntimeNotRunningError",
    "SerializationError",
    "ServiceConfigError",
    "TaskCancelledError",
    "TaskError",
    "TransitionError",
    "UnauthorizedError",
    "UnsupportedMediaError",
    "WorkerCrashedError",
    "WouldBlock",
]

# The classes' home is this module: reprs, tracebacks and pickles name
# ``rigd._exceptions.X`` whichever module defines X.
for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
