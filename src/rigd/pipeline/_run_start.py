"""A run's start: its rings, its actors spawned and wired, devices opened.

``Pipeline.load`` (``_supervisor``) calls these in order: the device
sources first (``open_devices``: each opens its device and reports its
shapes, and the plan is resolved), then the rings (``create_rings``), then
every other actor spawned with its resources and its wiring
(``create_actors``), then the calls every actor answers (``call_all``:
attach, setup). An actor the runtime restarted comes back the same way
(``rejoin``, from the actor watch).
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from rigd import actors
from rigd._exceptions import GetTimeoutError, RigdError, TaskError
from rigd.pipeline._endpoints import InputWiring, Wiring, open_endpoints
from rigd.pipeline._state import RunState
from rigd.storage import FrameRing

if TYPE_CHECKING:
    from rigd.pipeline._supervisor import Pipeline

__all__ = [
    "CALL_TIMEOUT_S",
    "call_all",
    "collect_started_files",
    "create_actors",
    "create_rings",
    "open_devices",
    "rejoin",
    "setup_timeout",
    "spawn",
]

log = logging.getLogger("rigd.pipeline._supervisor")

#: How long one call to an actor (attach, setup, run, stop, summary) may take.
CALL_TIMEOUT_S = 60.0
#: How long a recorder may take to name its file when a start failed.
_SUMMARY_TIMEOUT_S = 5.0
#: A start waits for its actors in slices of this (s), to see ``interrupt_start``.
_SLICE_S = 0.25


def setup_timeout(p: Pipeline) -> float:
    """Seconds each start call may take: the pipeline file's ``run.setup_timeout_s``."""
    return float(p.plan.file.config.run.setup_timeout_s)


def get_named(p: Pipeline, method: str, refs: dict[str, Any]) -> list[Any]:
    """The values of start calls ``{actor: ref}``, in order.

    ``setup`` and ``describe_device`` wait ``setup_timeout`` at most,
    ``attach`` ``CALL_TIMEOUT_S``.

    Raises:
        RigdError: some did not answer in time; it names them, the call and
            the option that raises the timeout. Also when the start was
            interrupted (``Pipeline.interrupt_start``).
    """
    what = method.strip("_").removeprefix("rigd_")
    # Attach is the framework's (the process, its rings): its own timeout;
    # setup and describe_device run the user's code, under the file's option.
    if method == "__rigd_attach__":
        timeout, how = CALL_TIMEOUT_S, ""
    else:
        timeout = setup_timeout(p)
        how = f" (the pipeline file's run.setup_timeout_s; raise it there if {what} needs longer)"
    deadline = time.monotonic() + timeout
    while True:
        # In slices: a start interrupted from another thread ends within one.
        left = deadline - time.monotonic()
        try:
            return actors.get(list(refs.values()), timeout=max(0.0, min(left, _SLICE_S)))
        except GetTimeoutError:
            if p.start_interrupted.is_set():
                raise RigdError(f"the start was interrupted during {what}") from None
            if left > _SLICE_S:
                continue
        _, waiting = actors.wait(list(refs.values()), num_returns=len(refs), timeout=0)
        late = [name for name, ref in refs.items() if any(ref is w for w in waiting)]
        raise RigdError(
            f"actor(s) {', '.join(map(repr, late))} did not return from {what} within "
            f"{timeout:g} s{how}"
        ) from None


def create_rings(p: Pipeline) -> None:
    for ring_plan in p.plan.rings:
        p._rings[ring_plan.name] = FrameRing.create(
            f"{p.plan.name}-{p._token}-{ring_plan.name}",
            ring_plan.shape,
            ring_plan.dtype,
            slot_count=ring_plan.slots,
            # Room for a restarted reader before its dead one is reclaimed.
            max_readers=len(ring_plan.readers) + 4,
            kind=ring_plan.kind,
        )


def open_devices(p: Pipeline) -> None:
    """Start the device sources first; each opens its device and reports its shapes.

    Then the plan is resolved (every ring's shape known) and the applied
    settings join the run metadata as ``<actor>.<setting>``.
    """
    devices = [a for a in p.plan.actors if a.opens_device]
    if not devices:
        return
    for actor in devices:
        spawn(p, actor)
    refs = {a.name: p._handles[a.name].describe_device.remote() for a in devices}
    reported: dict[str, dict[str, Any]] = {}
    for actor in devices:
        try:
            reported[actor.name] = get_named(p, "describe_device", {actor.name: refs[actor.name]})[
                0
            ]
        except TaskError as exc:
            # The device's own message (its last line), not the remote traceback.
            lines = exc.remote_traceback.strip().splitlines() or [str(exc)]
            raise RigdError(f"actor {actor.name!r} could not open its device: {lines[-1]}") from exc
    p.plan = p.plan.resolve({n: r["outputs"] for n, r in reported.items()})
    # The status samples the resolved plan's rings: the device sources'
    # links exist only from here on (before, status() would show none).
    p._link_rates.plan = p.plan
    for name, report in reported.items():
        for key, value in report["metadata"].items():
            p.metadata.setdefault(f"{name}.{key}", value)


def spawn(p: Pipeline, actor: Any) -> None:
    resources: dict[str, Any] = {"max_restarts": actor.config.max_restarts}
    if actor.config.num_cpus is not None:
        resources["num_cpus"] = actor.config.num_cpus
    if actor.config.num_gpus is not None:
        resources["num_gpus"] = actor.config.num_gpus
    remote_class = actors.remote(**resources)(actor.cls)
    handle = remote_class.options(name=actor.name, namespace=p.namespace).remote(**actor.options)
    p._handles[actor.name] = handle
    p._restarts[actor.name] = 0


def create_actors(p: Pipeline, run_info: dict[str, Any]) -> None:
    for actor in p.plan.actors:
        inputs: dict[str, InputWiring] = {}
        outputs: dict[str, str] = {}
        # What the columns of each records input mean, for recorders:
        # {input: [(name, units, long_name), ...]}.
        input_fields: dict[str, list[tuple[str, str, str]]] = {}
        for ring_plan in p.plan.rings:
            segment = p._rings[ring_plan.name].name
            if ring_plan.writer == actor.name:
                outputs[ring_plan.output] = segment
            for reader, inp, policy, low_latency in ring_plan.readers:
                if reader == actor.name:
                    inputs[inp] = InputWiring(segment, policy, low_latency)
                    if ring_plan.fields:
                        input_fields[inp] = [
                            (f.name, f.units, f.long_name) for f in ring_plan.fields
                        ]
        run = {**run_info, "actor": actor.name, "input_fields": input_fields}
        p._wiring[actor.name] = Wiring(inputs, outputs, run, tuple(actor.config.cpus or ()))
        if actor.name not in p._handles:
            spawn(p, actor)


def call_all(p: Pipeline, method: str, args: Any = None) -> list[Any]:
    refs = {}
    for actor in p.plan.actors:
        handle = p._handles[actor.name]
        call_args = args(actor.name) if args is not None else ()
        refs[actor.name] = getattr(handle, method).remote(*call_args)
    p._start_calls = refs
    return get_named(p, method, refs)


def collect_started_files(p: Pipeline) -> None:
    """The files of the recorders whose ``setup`` returns, for a start that failed.

    Their summaries join ``p._recordings`` so that the teardown seals those
    files; recorders that do not answer within ``_SUMMARY_TIMEOUT_S`` (all
    together) are skipped.
    """
    deadline = time.monotonic() + _SUMMARY_TIMEOUT_S
    for name in p.plan.recorders:
        ref = p._start_calls.get(name)
        if name in p._recordings or ref is None or name not in p._handles:
            continue
        with contextlib.suppress(Exception):
            # A recorder may be between making its file and returning.
            left = max(0.0, deadline - time.monotonic())
            actors.get(ref, timeout=left)  # raises if its setup failed: no file then
            left = max(0.0, deadline - time.monotonic())
            p._recordings[name] = actors.get(p._handles[name].summary.remote(), timeout=left)


def rejoin(p: Pipeline, name: str, restarts: int) -> None:
    """Bring a restarted actor back into the run."""
    handle = p._handles[name]
    log.warning("pipeline %s: actor %r restarted (%d); rejoining", p.plan.name, name, restarts)
    try:
        actors.get(
            handle.__rigd_attach__.remote(open_endpoints, p._wiring[name]),
            timeout=CALL_TIMEOUT_S,
        )
        actors.get(handle.__rigd_setup__.remote(), timeout=CALL_TIMEOUT_S)
        actors.get(handle.__rigd_run__.remote(), timeout=CALL_TIMEOUT_S)
        if p.state == RunState.PAUSED and name in {a.name for a in p.plan.actors if a.is_source}:
            # A source restarted during a pause holds like the others.
            actors.get(handle.__rigd_pause__.remote(), timeout=CALL_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - it may die again; the next poll sees it
        log.error("pipeline %s: actor %r could not rejoin: %s", p.plan.name, name, exc)
        return
    for recorder in p.plan.recorders:
        if recorder == name:
            continue
        with contextlib.suppress(Exception):
            actors.get(
                p._handles[recorder].note_event.remote(f"actor {name} restarted ({restarts})"),
                timeout=CALL_TIMEOUT_S,
            )
