"""improv's actor API on rigd: port an improv actor by changing its import.

::

    from rigd.compat.improv import Actor      # was: from improv.actor import Actor

    class Processor(Actor):
        def setup(self): ...
        def runStep(self):
            key = self.q_in.get(timeout=0.05)   # queue.Empty when nothing came
            data = self.client.get(key)
            ...
        def stop(self): ...

What maps to what:

- ``setup`` / ``runStep`` / ``stop``: rigd's ``setup`` / ``run_step`` /
  ``stop``; rigd drives them (no ``RunManager``, no signals to handle).
- ``self.q_in`` / ``self.q_out`` and ``self.links[name]``: the actor's links
  from the pipeline (or improv config) file: rigd's ``messages`` links
  (``MessageWriter``/``MessageReader``). ``put(obj)`` sends any picklable
  object (up to ``max_message_bytes`` packed, 64 KiB unless the class or
  the pipeline file sets another; a larger one is refused with
  ``MessageTooLargeError``, a ``ValueError``) through a lossless ring: the
  writer waits when a reader is a whole ring behind, as improv's queues
  hold. ``get(timeout=None)`` returns the next one or raises
  ``queue.Empty`` after ``timeout``, as ``multiprocessing`` queues do.
  Once every input has ended (its writer stopped) and is drained, the actor
  finishes after its current step, so a run stops without losing data.
- ``self.client.put(obj, name)`` / ``get(name)`` / ``getID(key)``: the run's
  store by key (``rigd.store``, through ``rigd.compat._store_client``),
  shared by its actors; the data stays out of the links, as in improv.
- ``self.improv_logger`` (and ``self.log``): the logger named after the
  actor; its lines, and those of the module loggers improv's demos use, go
  to the run's log file prefixed with the actor's name.
- ``self.name``: the actor's name from the file (the class may set its own).

What differs from improv: an actor is one process of a rigd pipeline, so
its constructor takes its options as keywords only (improv passes the
name and store location positionally; those are accepted and kept, but
rigd does not need them); there is no ``q_sig``/``q_comm`` (the
supervisor drives the actor); a GUI actor sets ``gui = True`` and writes
``gui_main`` (see ``rigd.Actor``).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Mapping
from typing import Any, ClassVar

from rigd._exceptions import (
    EndOfStream,
    MessageTooLargeError,
    ObjectNotFoundError,
    RingBrokenError,
    WouldBlock,
)
from rigd.actors import Actor as _RigdActor
from rigd.compat._store_client import StoreClient
from rigd.storage import MessageReader, MessageWriter

__all__ = ["Actor", "Link", "ManagedActor", "ObjectNotFoundError", "StoreClient"]

#: The largest packed message an improv actor's output takes unless it sets another.
MESSAGE_BYTES = 64 * 1024


class Link:
    """One of an improv actor's links: ``put`` on an output, ``get`` on an input.

    A rigd ``messages`` link: ``writer`` a ``MessageWriter``, ``reader`` a
    ``MessageReader`` (lossless), improv's queue calls on top.
    """

    def __init__(
        self,
        name: str,
        reader: MessageReader | None = None,
        writer: MessageWriter | None = None,
    ) -> None:
        self.name = name
        self._reader = reader
        self._writer = writer
        self.ended = False

    def put(self, obj: Any, timeout: float | None = None) -> None:
        """Send ``obj`` (any picklable object) to every actor linked to this output.

        Raises:
            TypeError: this link is an input (or ``obj`` cannot be pickled:
                ``SerializationError``).
            MessageTooLargeError: ``obj`` packs to more than the link's
                ``max_message_bytes`` (a ``ValueError``); nothing is sent.
            TimeoutError: a reader stayed a whole ring behind for ``timeout`` seconds.
        """
        if self._writer is None:
            raise TypeError(f"link {self.name!r} is an input; put() goes to an output (q_out)")
        try:
            self._writer.put(obj, timeout=timeout)
        except MessageTooLargeError as exc:
            raise MessageTooLargeError(
                f"a message does not fit link {self.name!r}: {exc}; or put the data in the "
                "store (key = self.client.put(obj)) and send the key"
            ) from None

    def put_nowait(self, obj: Any) -> None:
        """``put`` without waiting; raises ``queue.Full`` when a reader is a ring behind."""
        try:
            self.put(obj, timeout=0)
        except (TimeoutError, WouldBlock):
            raise queue.Full(f"link {self.name!r} is full") from None

    def get(self, timeout: float | None = None) -> Any:
        """The next object sent down this link.

        Raises:
            queue.Empty: nothing came within ``timeout`` seconds, or the
                link ended (its writer stopped; ``ended`` is then true).
            TypeError: this link is an output.
        """
        if self._reader is None:
            raise TypeError(f"link {self.name!r} is an output; get() reads an input (q_in)")
        try:
            message = (
                self._reader.get(timeout=timeout) if timeout != 0 else self._reader.get_nowait()
            )
        except (TimeoutError, WouldBlock):
            raise queue.Empty from None
        except EndOfStream:
            self.ended = True
            raise queue.Empty from None
        except RingBrokenError:
            raise queue.Empty from None  # the writer died; it comes back if it restarts
        with message:  # a copy out of the slot: the object outlives it
            return message.copy()

    def get_nowait(self) -> Any:
        """``get`` without waiting."""
        return self.get(timeout=0)

    def __repr__(self) -> str:
        return f"Link({self.name!r}, {'output' if self._writer is not None else 'input'})"


class Actor(_RigdActor):
    """improv's ``Actor`` (its ``ManagedActor``): override ``setup``, ``runStep``, ``stop``.

    Class attributes:
        max_message_bytes: the largest packed message an output carries (the
            pipeline file's ``outputs: {q_out: {max_message_bytes: N}}`` wins).

    Every output is a ``messages`` link (``output_kinds``, set for each
    subclass's ``output_names``), every input takes one.
    """

    input_names: ClassVar[tuple[str, ...] | None] = None  # q_in, and any named link
    output_names: ClassVar[tuple[str, ...]] = ("q_out",)
    output_kinds: ClassVar[Mapping[str, str]] = {"q_out": "messages"}
    input_kinds: ClassVar[Mapping[str, str]] = {"q_in": "messages"}
    max_message_bytes: ClassVar[int] = MESSAGE_BYTES

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "output_kinds" not in cls.__dict__:
            cls.output_kinds = dict.fromkeys(cls.output_names, "messages")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # improv: AbstractActor(name, store_loc, method="fork"); options as keywords.
        self.name: str = str(args[0]) if args else str(kwargs.pop("name", type(self).__name__))
        self.store_loc: Any = args[1] if len(args) > 1 else kwargs.pop("store_loc", None)
        self.method: str = str(kwargs.pop("method", "fork"))
        self.options: dict[str, Any] = kwargs
        self.links: dict[str, Link] = {}
        self.q_in: Link | None = None
        self.q_out: Link | None = None
        self.client: StoreClient | None = None
        self.lower_priority = False
        self.__dict__["_improv_default_name"] = self.name

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, tuple[tuple[int, ...], str]]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        """None: every output is a ``messages`` link (the plan sizes its ring)."""
        return {}

    @property
    def improv_logger(self) -> logging.Logger:
        """improv's per-actor logger: the logger named after the actor (``self.log``)."""
        return self.log

    # -- improv's hooks -------------------------------------------------------------

    def runStep(self) -> None:  # noqa: N802 - improv's name
        """One step of work (improv's ``runStep``); called in a loop while the run goes."""
        raise NotImplementedError(f"{type(self).__name__} must define runStep()")

    # -- rigd's side ------------------------------------------------------------------

    def run_step(self) -> None:
        self.runStep()
        inputs = [link for link in self.links.values() if link._reader is not None]
        if inputs and all(link.ended for link in inputs):
            raise EndOfStream

    def __rigd_attach__(self, opener: Any, wiring: Any) -> None:
        super().__rigd_attach__(opener, wiring)
        run = self.run_info
        actor = str(run.get("actor") or self.name)
        if self.name == self.__dict__.get("_improv_default_name"):
            self.name = actor
        self.links = {}
        for name, reader in self.inputs.items():
            if not isinstance(reader, MessageReader):
                raise TypeError(
                    f"{actor}.{name} is an improv input: link it from a messages output "
                    f"(an improv actor's q_out, or outputs: {{out: {{kind: messages}}}})"
                )
            self.links[name] = Link(name, reader=reader)
        for name, writer in self.outputs.items():
            if not isinstance(writer, MessageWriter):
                raise TypeError(f"{actor}.{name} is an improv output: give it kind messages")
            self.links[name] = Link(name, writer=writer)
        self.q_in = self.links.get("q_in")
        self.q_out = self.links.get("q_out")
        self.client = StoreClient(actor)


#: improv's full name for ``Actor``.
ManagedActor = Actor
