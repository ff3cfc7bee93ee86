"""Message rings: any picklable object between processes, through byte slots.

A message ring is a ``FrameRing`` of ``kind="messages"`` whose frames are
byte slots (shape ``(slot_bytes,)``, dtype ``uint8``). ``MessageWriter.put``
packs an object (``_oob``: plain data as MessagePack, anything else pickled
with protocol 5), its numpy arrays and ``pickle.PickleBuffer`` objects out
of band, and lays the stream and the buffers out in the next slot: one
copy, at the writer. ``MessageReader.get`` hands back a ``Message`` whose
``value`` is decoded from the slot with every array a read-only view of it:
no copy at the reader, as with frames.

Everything else is the frame ring's: one writer, readers with the
``lossless`` (back-pressure) or ``latest`` (skip, count drops) policy, frame
ids and timestamps per message (a recorder's drop ledger works on them as on
frames), end of stream, dead writers and readers noticed.

Each message may take at most ``max_message_bytes`` once packed (its pickle,
its buffers, 16 bytes per buffer and a 16-byte header, each buffer aligned
to 64 bytes); a larger one is refused with ``MessageTooLargeError`` and
nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

import numpy as np

from rigd._exceptions import EndOfStream, MessageTooLargeError, WouldBlock
from rigd.storage._msgpack import Encoder
from rigd.storage._oob import dumps, loads_from, read_packed, write_packed
from rigd.storage._ring import Frame, FrameRing, ReaderPolicy, RingReader, RingWriter

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "Message",
    "MessageReader",
    "MessageTooLargeError",
    "MessageWriter",
    "message_ring_shape",
]

#: A message link's default cap on one packed message: 1 MiB.
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20


def message_ring_shape(max_message_bytes: int) -> tuple[int, ...]:
    """The frame shape of a message ring whose messages take at most ``max_message_bytes``.

    Raises:
        ValueError: ``max_message_bytes`` is not a positive int.
    """
    if (
        isinstance(max_message_bytes, bool)
        or not isinstance(max_message_bytes, int)
        or max_message_bytes <= 0
    ):
        raise ValueError(
            f"max_message_bytes must be a positive int (bytes), got {max_message_bytes!r}"
        )
    return (max_message_bytes,)


class Message:
    """One message a reader holds: its object, its ids and stamps.

    ``value`` is decoded on first access, its arrays (and bytes sent as
    ``pickle.PickleBuffer``, as memoryviews) read-only views of the slot:
    valid until the message is released (``with reader.read() as message:``). Use
    ``reader.take()`` for an object that outlives the slot.
    """

    __slots__ = ("_frame", "_loaded", "_value", "_view")

    def __init__(self, frame: Frame, view: memoryview | None = None) -> None:
        self._frame = frame
        # The slot as bytes (read-only), if the reader has it at hand.
        self._view = view
        self._loaded = False
        self._value: Any = None

    @property
    def value(self) -> Any:
        """The object the writer put (views of the slot; see the class docstring)."""
        if not self._loaded:
            view = self._view
            self._value = loads_from(self._frame.array) if view is None else read_packed(view)
            self._loaded = True
        return self._value

    def copy(self) -> Any:
        """The object, every buffer copied out of the slot."""
        return loads_from(self._frame.array, copy=True)

    @property
    def data(self) -> memoryview:
        """The packed bytes in the slot (read-only, valid until release)."""
        return memoryview(self._frame.array.data).toreadonly()

    @property
    def frame_id(self) -> int:
        return self._frame.frame_id

    @property
    def timestamp_ns(self) -> int:
        """When the writer put it, ns since the epoch (or the writer's own stamp)."""
        return self._frame.timestamp_ns

    @property
    def seq(self) -> int:
        return self._frame.seq

    @property
    def torn(self) -> bool:
        """Set by release: the writer overwrote the slot while it was held (latest)."""
        return self._frame.torn

    def __enter__(self) -> Message:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._value = None
        self._frame.__exit__(et, ev, tb)

    def __repr__(self) -> str:
        return f"Message(seq={self.seq}, frame_id={self.frame_id})"


class MessageWriter:
    """The one writer of a message ring (``ring.kind == "messages"``)."""

    def __init__(self, ring: FrameRing, writer: RingWriter | None = None) -> None:
        if ring.kind != "messages":
            raise ValueError(f"ring {ring.name!r} carries {ring.kind}, not messages")
        self._ring = ring
        self._writer = writer if writer is not None else ring.writer()
        #: The most bytes one packed message may take.
        self.max_message_bytes = ring.frame_nbytes
        self._slots = [memoryview(view.data).cast("B") for view in ring._seg.views]
        self._encoder = Encoder()

    def put(
        self,
        obj: Any,
        frame_id: int | None = None,
        timestamp_ns: int | None = None,
        timeout: float | None = None,
    ) -> int:
        """Pickle ``obj`` into the next slot and commit it; return its sequence number.

        Waits while a lossless reader is a whole ring behind.

        Raises:
            SerializationError: ``obj`` cannot be pickled (a ``TypeError``).
            MessageTooLargeError: packed, it is larger than ``max_message_bytes``.
            TimeoutError: still no free slot after ``timeout`` seconds.
            RingClosedError: the writer was closed.
        """
        # The message is on its way: low-latency readers wake while it is packed.
        self._writer.announce()
        packed = dumps(obj, self._encoder)
        if packed.nbytes > self.max_message_bytes:
            raise MessageTooLargeError(
                f"a message of {packed.nbytes} bytes ({type(obj).__name__}) is larger than "
                f"the {self.max_message_bytes} bytes link {self._ring.name!r} takes; raise "
                "max_message_bytes on the output (pipeline file: outputs: {name: {kind: "
                "messages, max_message_bytes: N}}) or send less"
            )
        writer = self._writer
        seq = writer._begin(timeout)
        try:
            write_packed(packed, self._slots[seq % len(self._slots)])
        except BaseException:
            writer._abandon(seq)
            raise
        writer._commit(seq, frame_id, timestamp_ns)
        return seq

    def put_nowait(
        self, obj: Any, frame_id: int | None = None, timestamp_ns: int | None = None
    ) -> int:
        """Like ``put``, but raise ``WouldBlock`` instead of waiting for a slot."""
        try:
            return self.put(obj, frame_id, timestamp_ns, timeout=0)
        except TimeoutError:
            raise WouldBlock(
                f"ring {self._ring.name!r} is full: a lossless reader is a whole ring behind"
            ) from None

    def ready(self) -> bool:
        """Whether the next ``put`` would find a free slot now (see ``RingWriter.ready``)."""
        return self._writer.ready()

    @property
    def previous(self) -> tuple[int, int] | None:
        """The last message a writer committed before this one attached (see ``RingWriter``)."""
        return self._writer.previous

    def announce(self) -> None:
        """Say a message is on its way (see ``RingWriter.announce``)."""
        self._writer.announce()

    def close(self) -> None:
        """End the stream: readers drain what is left, then get ``EndOfStream``."""
        self._writer.close()
        for slot in self._slots:
            slot.release()
        self._slots = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MessageReader:
    """One reader of a message ring, with its own cursor and policy."""

    def __init__(self, reader: RingReader) -> None:
        self._reader = reader
        # Each slot as bytes (read-only views), made once, not per message.
        self._views = [memoryview(view.data).cast("B") for view in reader._seg.read_views]

    @classmethod
    def attach(
        cls, ring: FrameRing, policy: ReaderPolicy | str = ReaderPolicy.LOSSLESS
    ) -> MessageReader:
        """A new reader of ``ring`` (see ``FrameRing.reader``).

        Raises:
            ValueError: ``ring`` is not a message ring, or an unknown policy.
        """
        if ring.kind != "messages":
            raise ValueError(f"ring {ring.name!r} carries {ring.kind}, not messages")
        return cls(ring.reader(policy))

    @property
    def policy(self) -> ReaderPolicy:
        return self._reader.policy

    @property
    def frames_dropped(self) -> int:
        """Messages this reader skipped (latest) or lost to torn reads, so far."""
        return self._reader.frames_dropped

    @property
    def shape(self) -> tuple[int, ...]:
        """The ring's slot shape: ``(max_message_bytes,)``."""
        return self._reader.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        return self._reader.dtype

    def get(self, timeout: float | None = None) -> Message:
        """The next message (lossless) or the newest (latest); release it after.

        Raises:
            TimeoutError, EndOfStream, RingBrokenError, RuntimeError: as
            ``RingReader.get``.
        """
        frame = self._reader.get(timeout)
        return Message(frame, self._views[frame.slot])

    def ready(self) -> bool:
        """Whether ``get`` would return now (see ``RingReader.ready``)."""
        return self._reader.ready()

    def get_nowait(self) -> Message:
        """Like ``get``, but raise ``WouldBlock`` instead of waiting."""
        frame = self._reader.get_nowait()
        return Message(frame, self._views[frame.slot])

    def read(self, timeout: float | None = None) -> Message:
        """``with reader.read() as message:`` gets a message and releases it after."""
        return self.get(timeout)

    def take(self, timeout: float | None = None) -> Any:
        """The next message's object, copied out of its slot, released at once.

        Raises:
            TimeoutError, EndOfStream, RingBrokenError: as ``get``.
        """
        with self.get(timeout) as message:
            return message.copy()

    def release(self, message: Message) -> bool:
        """Give the message's slot back; ``False`` if it was torn (see ``RingReader``)."""
        message._value = None
        return self._reader.release(message._frame)

    def announce_on(self, *writers: Any) -> None:
        """Announce on ``writers`` whenever this reader takes a message."""
        self._reader.announce_on(*(getattr(w, "_writer", w) for w in writers))

    def __iter__(self) -> Iterator[Message]:
        """Yield messages until end of stream, releasing each before the next."""
        while True:
            try:
                message = self.get()
            except EndOfStream:
                return
            try:
                yield message
            finally:
                if self._reader._held is message._frame:
                    self.release(message)

    def close(self) -> None:
        """Detach: free the reader slot."""
        self._reader.close()
        for view in self._views:
            view.release()
        self._views = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
