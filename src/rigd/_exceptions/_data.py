"""The data path's errors: rings, message links, the store, recordings.

Part of the tree drawn in ``rigd._exceptions``, which exports every class.
"""

from __future__ import annotations

from typing import Any

from rigd._exceptions._root import RigdError

__all__ = [
    "EndOfStream",
    "MessageTooLargeError",
    "ObjectNotFoundError",
    "RecordingError",
    "RingBrokenError",
    "RingClosedError",
    "RingLayoutError",
    "SerializationError",
    "WouldBlock",
]


class EndOfStream(RigdError):  # noqa: N818 - an outcome, not an error (trio: EndOfChannel)
    """Raised by a ring reader once the writer closed the ring and all is read.

    Not raised while frames remain: a reader drains the ring first. Distinct
    from a timeout (``TimeoutError``) and from a dead writer
    (``RingBrokenError``).
    """


class RingClosedError(RigdError):
    """Raised when a ring endpoint is used after it was closed on this side."""


class RingBrokenError(RigdError):
    """Raised when the process at the other end of a ring died.

    A reader gets it once it has read every frame the dead writer committed.
    A writer does not get it for a dead lossless reader: that reader is
    dropped (and counted), so the writer goes on.
    """


class RingLayoutError(RigdError, ValueError):
    """Raised when attaching to a segment that is not a ring, or of another layout version."""


class WouldBlock(RigdError):  # noqa: N818 - trio's name for it
    """Raised by ``put_nowait``/``get_nowait`` when the call would have to wait."""


class MessageTooLargeError(RigdError, ValueError):
    """A message is larger than its link's ``max_message_bytes``; it was not sent."""


class SerializationError(RigdError, TypeError):
    """An object could not be pickled (or a packed area is not one)."""


class ObjectNotFoundError(RigdError, KeyError):
    """Nothing is stored under the key improv's ``client.get`` asked for (improv's name).

    Raised by ``rigd.compat.improv.StoreClient``; a ``KeyError``, as the
    store's own ``get`` raises.
    """


class RecordingError(RigdError, OSError):
    """Raised when a recording stops because a write failed (full disk, I/O error).

    The file keeps every frame written before the failure and stays readable
    (``rigd recover`` seals it if the writer could not). ``path`` is the file
    and ``frames_written`` what it holds per stream.
    """

    def __init__(self, message: str, path: str = "", frames_written: dict[str, int] | None = None):
        super().__init__(message)
        self.path = path
        self.frames_written = dict(frames_written or {})

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.path, self.frames_written))
