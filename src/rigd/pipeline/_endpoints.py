"""Opening an actor's inputs and outputs: ring readers and writers, by segment name.

The supervisor sends each pipeline actor its *wiring* (which ring each
endpoint is, and each reader's policy) with ``open_endpoints`` as the
opener; the actor calls it in its own process (see ``rigd.actors.Actor``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import rigd
from rigd._exceptions import RingBrokenError
from rigd.actors import add_input_lost_error
from rigd.gpu import register_pinned
from rigd.storage import FrameRing, RingReader, RingWriter

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
) -> tuple[dict[str, RingReader], dict[str, RingWriter], Callable[[], None]]:
    """Attach to the rings ``wiring`` names; return readers, writers and a closer.

    The closer detaches readers and mappings; writers are closed (end of
    stream) by the actor when its run ends, not by the closer.
    """
    rings: list[FrameRing] = []
    readers: dict[str, RingReader] = {}
    writers: dict[str, RingWriter] = {}
    pinned: list[Callable[[], None]] = []
    has_gpu = bool(rigd.get_gpu_ids())

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
            readers[name] = ring.reader(source.policy, low_latency=source.low_latency)
            if has_gpu:
                # Once, at attach: copies from the slots to the GPU are then DMA.
                unregister = register_pinned(*ring.slot_memory())
                if unregister is not None:
                    pinned.append(unregister)
        for name, segment in wiring.outputs.items():
            ring = FrameRing.attach(segment)
            rings.append(ring)
            writers[name] = ring.writer()
            if has_gpu:
                # Results copied back from the GPU land in the slot by DMA too.
                unregister = register_pinned(*ring.slot_memory())
                if unregister is not None:
                    pinned.append(unregister)
        if len(readers) == 1:
            # One input: each frame taken means an output is on its way, so
            # low-latency readers downstream can wake while this actor works.
            for reader in readers.values():
                reader.announce_on(*writers.values())
    except BaseException:
        close()
        raise
    return readers, writers, close
