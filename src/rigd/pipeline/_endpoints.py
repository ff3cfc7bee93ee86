"""Opening an actor's inputs and outputs: ring readers and writers, by segment name.

A message ring (``ring.kind == "messages"``) opens as a ``MessageReader`` or
``MessageWriter``; frames and records rings as plain ring readers and writers.

The supervisor sends each pipeline actor its *wiring* (which ring each
endpoint is, and each reader's policy) with ``open_endpoints`` as the
opener; the actor calls it in its own process (see ``rigd.actors.Actor``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rigd._exceptions import RingBrokenError
from rigd.actors import add_input_lost_error, get_gpu_ids
from rigd.storage import (
    RUN_ENV,
    STORE_ENV,
    FrameRing,
    MessageReader,
    MessageWriter,
    RingReader,
    RingWriter,
)

__all__ = ["InputWiring", "Wiring", "open_endpoints"]

# A reader raises RingBrokenError while its writer's actor is dead (it may
# restart): the actor's step loop waits and retries instead of failing. This
# module is imported in the actor's process with the opener it is sent.
add_input_lost_error(RingBrokenError)


@dataclass(frozen=True)
class InputWiring:
    segment: str
    policy: str = "lossless"
    low_latency: bool = False


@dataclass(frozen=True)
class Wiring:
    """What one actor attaches to, and the run it belongs to."""

    inputs: dict[str, InputWiring] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    #: The run: ``run_id``, ``pipeline`` (name), ``pipeline_text``,
    #: ``started`` (ISO 8601), ``metadata``, ``actor`` (this actor's name).
    run: dict[str, Any] = field(default_factory=dict)
    #: The CPUs the actor's process runs on (empty: wherever the kernel likes).
    cpus: tuple[int, ...] = ()


def open_endpoints(
    wiring: Wiring,
) -> tuple[
    dict[str, RingReader | MessageReader],
    dict[str, RingWriter | MessageWriter],
    Callable[[], None],
]:
    """Attach to the rings ``wiring`` names; return readers, writers and a closer.

    The closer detaches readers and mappings; writers are closed (end of
    stream) by the actor when its run ends, not by the closer.
    """
    rings: list[FrameRing] = []
    readers: dict[str, RingReader | MessageReader] = {}
    writers: dict[str, RingWriter | MessageWriter] = {}
    pinned: list[Callable[[], None]] = []
    pin: Callable[[int, int], Any] | None = None
    if get_gpu_ids():
        # Imported here: only an actor with a GPU pins its slots (one without,
        # e.g. each actor of a rigd reprocess task, never imports rigd.gpu).
        from rigd.gpu import register_pinned

        pin = register_pinned
    if wiring.run.get("store"):
        # rigd.store in this actor (and programs it starts): its pipeline's store, its run.
        os.environ[STORE_ENV] = str(wiring.run["store"])
        os.environ[RUN_ENV] = str(wiring.run.get("run_id", ""))

    def close() -> None:
        for unregister in pinned:
            unregister()
        for reader in readers.values():
            reader.close()
        for ring in rings:
            ring.close()

    try:
        for name, source in wiring.inputs.items():
            ring = FrameRing.attach(source.segment)
            rings.append(ring)
            reader = ring.reader(source.policy, low_latency=source.low_latency)
            readers[name] = MessageReader(reader) if ring.kind == "messages" else reader
            if pin is not None:
                # Once, at attach: copies from the slots to the GPU are then DMA.
                unregister = pin(*ring.slot_memory())
                if unregister is not None:
                    pinned.append(unregister)
        for name, segment in wiring.outputs.items():
            ring = FrameRing.attach(segment)
            rings.append(ring)
            writer = ring.writer()
            writers[name] = MessageWriter(ring, writer) if ring.kind == "messages" else writer
            if pin is not None:
                # Results copied back from the GPU land in the slot by DMA too.
                unregister = pin(*ring.slot_memory())
                if unregister is not None:
                    pinned.append(unregister)
        if len(readers) == 1:
            # One input: each frame taken means an output is on its way, so
            # low-latency readers downstream can wake while this actor works.
            for only in readers.values():
                only.announce_on(
                    *(w._writer if isinstance(w, MessageWriter) else w for w in writers.values())
                )
    except BaseException:
        close()
        raise
    return readers, writers, close
