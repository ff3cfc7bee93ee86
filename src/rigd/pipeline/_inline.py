"""A pipeline run inside this process: every actor a thread, for offline replay.

``rigd reprocess`` replays run files through a pipeline's processors. Started
as a live pipeline, every file costs one process per actor (each starting
Python and importing numpy, h5py and the actor's module) and rigd's runtime:
about 1-5 s of CPU per file on a 2-core machine, where the work of a short
file is a fraction of a second. Offline there is no camera to keep up with and
no process to isolate, so ``run_inline`` builds the same rings (shared memory,
as a live run's) and the same actor objects, and drives them through the
same protocol as the supervisor does (``__rigd_attach__``, ``__rigd_setup__``,
``__rigd_run__``'s step loops, then ``__rigd_stop__`` in ``stop_order``),
all in the calling process. Ray's own answer to the same cost is the same: a
task runs its function in a worker kept warm, not in processes of its own.

The step loops run in turn on one thread (``rigd.actors.run_on_one_thread``):
a thread per actor would wake a thread and hand over the GIL at every frame
of every link, about 0.05 s of CPU in a 300-frame file's 0.2 s. A step that
would wait for another actor after all (it needs two frames; its ring is
full) hands every actor a thread of its own at that moment, so what runs on
one thread is never a pipeline that could not run on threads.

On one thread the actors take turns, so a lossless ring holds a frame or
two at a time, and its other slots only cycle memory through the cache (16
slots of 256x256 uint16 are 2 MiB, more than a core's L2 cache here: 3-8 ms
of a 300-frame file's 100-140 ms of CPU, BENCHMARKS.md). Its rings then get ``_ONE_THREAD_SLOTS``
(``_ring_slots``): nothing drops (lossless), and a pipeline that runs with
the file's slots cannot deadlock with fewer unless an actor with two inputs
waits for a frame of one while it holds a frame of the other (the slots
must then cover how far one path lags the other). So only when every
actor with two inputs or more says it never does
(``Actor.takes_inputs_as_they_come``: the recorder). A ``latest`` link keeps
its slots: they are its reader's view of the past (a ``TriggeredRecorder``'s
frames before a trigger).

What differs from a live run: no restarts (an actor's failure fails the
replay), no GPU placement or CPU pinning, and the actors share one Python
process (numpy and h5py release the GIL for their work; pure-Python
processors serialize).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from collections.abc import Mapping
from typing import Any

from rigd.actors import OneThread, run_on_one_thread
from rigd.pipeline._endpoints import InputWiring, Wiring, open_endpoints
from rigd.pipeline._plan import Plan
from rigd.pipeline._stop_order import stop_order
from rigd.storage import FrameRing, call_before_sleeping

__all__ = ["InlineReport", "run_inline"]

_POLL_S = 0.2
#: The slots of a lossless ring of a replay stepped on one thread (``_ring_slots``).
_ONE_THREAD_SLOTS = 4
#: How long the stop waits for a step under way on the replay's thread.
_STOP_S = 10.0

log = logging.getLogger("rigd.pipeline")


class InlineReport(dict[str, Any]):
    """What ``run_inline`` did: ``files`` (each recorder's run file),
    ``frames`` (frames recorded, by stream), ``seconds``, ``step_errors``
    (``{actor: (steps that raised, the last error)}`` for each actor whose
    ``run_step`` raised and went on: frames it did not make), ``stepping``
    (``"one thread"``; ``"handed off"``: a step waited, and every actor was
    then given a thread of its own; ``"a thread per actor"``)."""


def run_inline(
    plan: Plan,
    run_id: str,
    metadata: Mapping[str, Any] | None = None,
    timeout: float = 3600.0,
    one_thread: bool = True,
) -> InlineReport:
    """Run ``plan`` to its end (its sources finish) with every actor in this process.

    Args:
        plan: a planned pipeline whose ring shapes are known from its file
            (a device source that must be opened first is refused).
        run_id: the run's id (the recorders' file names).
        metadata: run metadata for the run files.
        timeout: seconds the whole run may take.
        one_thread: step the actors in turn on one thread, each handed a
            thread of its own only once a step would wait
            (``rigd.actors.run_on_one_thread``); else a thread per actor
            from the start (as a GUI actor's run always is).

    Returns:
        The report; every file is sealed.

    Raises:
        ValueError: the plan has a device source.
        RuntimeError: an actor's step loop failed for good (``max_step_errors``),
            or the run did not end within ``timeout``; the files are sealed.
    """
    devices = [a.name for a in plan.actors if a.opens_device]
    if devices:
        raise ValueError(
            f"actors {devices} open a device: an in-process replay needs sources whose "
            "shapes the pipeline file gives (FilePlayback)"
        )
    start = time.monotonic()
    token = secrets.token_hex(3)
    steps: OneThread | None = None
    rings: dict[str, FrameRing] = {}
    actors: dict[str, Any] = {}
    run_info = {
        "run_id": run_id,
        "pipeline": plan.name,
        "pipeline_text": plan.file.text,
        "started": dt.datetime.now(dt.UTC).isoformat(),
        "metadata": {**plan.file.config.run.metadata, **(metadata or {})},
    }
    failure: str | None = None
    one_thread = one_thread and not any(getattr(a.cls, "gui", False) for a in plan.actors)
    slots = _ring_slots(plan, one_thread)
    try:
        for ring_plan in plan.rings:
            rings[ring_plan.name] = FrameRing.create(
                f"{plan.name}-{token}-{ring_plan.name}",
                ring_plan.shape,
                ring_plan.dtype,
                slot_count=slots[ring_plan.name],
                max_readers=len(ring_plan.readers) + 1,
                kind=ring_plan.kind,
            )
        for actor in plan.actors:
            instance = actor.cls(**actor.options)
            instance.__dict__["_rigd_inline"] = True  # giving up ends its loop, not this process
            actors[actor.name] = instance
            instance.__rigd_attach__(open_endpoints, _wiring(plan, actor.name, rings, run_info))
        for instance in actors.values():
            instance.__rigd_setup__()
        if one_thread:
            steps = run_on_one_thread([actors[a.name] for a in plan.actors], call_before_sleeping)
        else:
            for actor in reversed(plan.actors):  # downstream first, sources last
                actors[actor.name].__rigd_run__()
        deadline = start + timeout
        for actor in stop_order(plan.actors):
            instance = actors[actor.name]
            while not instance.__rigd_wait_finished__(_POLL_S):
                failure = _failed(actors) or (
                    f"the replay did not end within {timeout:g} s"
                    if time.monotonic() > deadline
                    else None
                )
                if failure:
                    break
            if failure:
                break
        failure = failure or _failed(actors)
    finally:
        # Every actor is stopped (its files sealed) and every ring removed, whatever
        # one actor's stop raises: the first such error fails the replay.
        stop_errors: list[str] = []
        # An actor that gave up first: its readers then stop holding the writers back.
        for name, gave_up in actors.items():
            control = gave_up.__dict__.get("_rigd_control")
            if control is not None and control.gave_up:
                _stop(name, gave_up, stop_errors)
        if steps is not None and not steps.stop(_STOP_S):
            # A step that never returns (a hung processor): its actors' stops go on
            # without it, not each after its own wait.
            log.warning("a step did not return within %g s of the stop; stopping anyway", _STOP_S)
        recordings = []
        for actor in stop_order(plan.actors):
            made: Any = actors.get(actor.name)
            if made is None:
                continue
            if "_rigd_inputs" in made.__dict__:
                _stop(actor.name, made, stop_errors)
            if actor.name in plan.recorders:
                recordings.append(made.summary())
        for ring in rings.values():
            ring.close()
            ring.unlink()
    failure = failure or (stop_errors[0] if stop_errors else None)
    if failure:
        raise RuntimeError(failure)
    return InlineReport(
        files=[r["path"] for r in recordings if r.get("path")],
        frames={k: v for r in recordings for k, v in r.get("frames", {}).items()},
        seconds=time.monotonic() - start,
        stepping=_stepping(steps),
        step_errors=_step_errors(actors),
    )


def _ring_slots(plan: Plan, one_thread: bool) -> dict[str, int]:
    """Each ring's slots in this replay: the file's, or for a lossless ring at most
    ``_ONE_THREAD_SLOTS`` when the actors take turns on one thread and every
    actor with two inputs or more takes them as they come (see the module)."""
    inputs: dict[str, int] = {}
    for ring_plan in plan.rings:
        for reader, *_ in ring_plan.readers:
            inputs[reader] = inputs.get(reader, 0) + 1
    joins_hold = any(
        inputs.get(a.name, 0) > 1 and not getattr(a.cls, "takes_inputs_as_they_come", False)
        for a in plan.actors
    )
    few = one_thread and not joins_hold
    return {
        r.name: (
            min(r.slots, _ONE_THREAD_SLOTS)
            if few and all(policy == "lossless" for _, _, policy, _ in r.readers)
            else r.slots
        )
        for r in plan.rings
    }


def _wiring(
    plan: Plan, name: str, rings: Mapping[str, FrameRing], run_info: dict[str, Any]
) -> Wiring:
    """Actor ``name``'s rings, as the supervisor wires them (``_create_actors``)."""
    inputs: dict[str, InputWiring] = {}
    outputs: dict[str, str] = {}
    input_fields: dict[str, list[tuple[str, str, str]]] = {}
    for ring_plan in plan.rings:
        segment = rings[ring_plan.name].name
        if ring_plan.writer == name:
            outputs[ring_plan.output] = segment
        for reader, inp, policy, low_latency in ring_plan.readers:
            if reader == name:
                inputs[inp] = InputWiring(segment, policy, low_latency)
                if ring_plan.fields:
                    input_fields[inp] = [(f.name, f.units, f.long_name) for f in ring_plan.fields]
    # No "actor" key: that would install a per-actor log handler in this, shared, process.
    return Wiring(inputs, outputs, {**run_info, "input_fields": input_fields})


def _stop(name: str, instance: Any, errors: list[str]) -> None:
    """``__rigd_stop__`` of one actor; what it raises is noted in ``errors``, not raised."""
    try:
        instance.__rigd_stop__()
    except Exception as exc:  # the other actors must still stop
        log.exception("actor %r: its stop failed", name)
        errors.append(f"actor {name!r}: its stop raised {type(exc).__name__}: {exc}")


def _step_errors(actors: Mapping[str, Any]) -> dict[str, tuple[int, str]]:
    """Each actor whose steps raised (and the loop went on): how often, and the last."""
    out: dict[str, tuple[int, str]] = {}
    for name, instance in actors.items():
        control = instance.__dict__.get("_rigd_control")
        if control is not None and control.errors:
            out[name] = (int(control.errors), str(control.last_error))
    return out


def _stepping(steps: OneThread | None) -> str:
    if steps is None:
        return "a thread per actor"
    return "handed off" if steps.handed_off else "one thread"


def _failed(actors: Mapping[str, Any]) -> str | None:
    """The first actor whose step loop gave up, as a failure text; None if none did."""
    for name, instance in actors.items():
        control = instance.__dict__.get("_rigd_control")
        if control is not None and control.gave_up:
            how = "for good" if control.fatal else f"{instance.max_step_errors} steps in a row"
            return f"actor {name!r} failed {how}; the last: {control.last_error}"
    return None
