"""Several pipeline actors' step loops on one thread, handed threads of their own
the moment one step would sleep.

A pipeline run gives each actor a thread (in its own process) that calls
``run_step`` in a loop; actors wait for each other on their rings. In one
process that has no camera to keep up with (an offline replay: ``rigd
reprocess``), those threads cost more than they give: every frame wakes the
thread downstream (a system call, then a hand-over of the GIL, from one core
to the other), where the steps' own work, reading a frame, averaging it,
writing it, mostly holds the GIL anyway. A replay of 300 frames of 256x256
spent about 0.2 s of CPU with a thread per actor against 0.13 s for the same
work in one plain loop (``BENCHMARKS.md``).

``run_on_one_thread`` steps the actors in turn, sources first, on one thread,
stepping an actor only when its step need not wait: every input has a frame
(or has ended) and every output has a free slot (the endpoints' ``ready()``).
A round in which no actor is ready steps one whose step may wait: the most
downstream with any input ready, else the most upstream. Whenever a step is
about to sleep after all (it needs a second frame; its ring is full; a
reader waits for a writer that this thread would run next), the endpoint
layer calls the hook the caller passed (``call_before_sleeping``: the storage
layer's futex wait calls it) and every other actor still running gets a
thread of its own on the spot, running ``run_steps`` as ``__rigd_run__``'s
would; this thread goes on as the sleeping actor's. From there on it is the
run of a thread per actor, so a step that waits never waits for its own
thread. A step may block in other ways (``time.sleep``, a socket); that
delays the others on this thread but cannot deadlock them unless it waits,
outside the rings, for another actor of the same run.

The actors' controls are theirs as with ``__rigd_run__``: ``control.thread``
is the thread that steps the actor (this one, its own after a hand-off, an
ended one once the actor left this thread), so ``__rigd_wait_finished__``
and ``__rigd_stop__`` work unchanged. A stop of any actor on this thread
stops this thread's stepping of them all (their stops follow; the inline
replay stops every actor at its end). Pausing is not supported here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from rigd.actors._step_loop import StepControl, end_steps, run_steps, step

if TYPE_CHECKING:
    from rigd.actors._pipeline_actor import Actor

__all__ = ["OneThread", "run_on_one_thread"]


class _Ended(threading.Thread):
    """``control.thread`` of an actor no thread steps any more: never alive, never
    waited for (not started, so importing this module starts no thread)."""

    def is_alive(self) -> bool:
        return False

    def join(self, timeout: float | None = None) -> None:
        return None


_ENDED = _Ended(name="rigd-steps-ended")


def run_on_one_thread(
    actors: Sequence[Actor],
    call_before_sleeping: Callable[[Callable[[], None] | None], None],
) -> OneThread:
    """Start the step loops of ``actors`` (attached and set up, sources first)
    on one new thread (``OneThread.thread``). It ends once every actor's loop
    ended (or was handed to a thread of its own, and that ended).

    Args:
        actors: the run's actors in the order their data flows (a writer
            before its readers).
        call_before_sleeping: ``rigd.storage.call_before_sleeping``: sets a
            hook this thread calls before it next sleeps on a ring.
    """
    steps = OneThread(actors, call_before_sleeping)
    for actor in actors:
        actor.__rigd_prepare_steps__().thread = steps.thread
    steps.thread.start()
    return steps


class _Stepped:
    """One actor on the thread: its control and its endpoints' readiness."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.control: StepControl = actor.__dict__["_rigd_control"]
        # Endpoints without ready() (none in a ring pipeline) are taken as ready:
        # their actor's step may then sleep, and hand off.
        self.inputs: list[Callable[[], bool]] = [
            e.ready for e in actor.inputs.values() if hasattr(e, "ready")
        ]
        self.outputs: list[Callable[[], bool]] = [
            e.ready for e in actor.outputs.values() if hasattr(e, "ready")
        ]
        self._every = (*self.inputs, *self.outputs)
        self.stop = self.control.stop

    def outputs_ready(self) -> bool:
        return all(ready() for ready in self.outputs)

    def all_ready(self) -> bool:
        # Asked of every actor at every frame: a plain loop, not all() over a
        # generator (half the cost, a few us a frame in a replay).
        for ready in self._every:  # noqa: SIM110 - see above
            if not ready():
                return False
        return True

    def any_ready(self) -> bool:
        return any(ready() for ready in self.inputs) and self.outputs_ready()


class OneThread:
    """The thread that steps a run's actors in turn (``run_on_one_thread``)."""

    def __init__(
        self,
        actors: Sequence[Actor],
        call_before_sleeping: Callable[[Callable[[], None] | None], None],
    ) -> None:
        self._actors = actors
        self._call_before_sleeping = call_before_sleeping
        self._live: list[_Stepped] = []
        self._current: _Stepped | None = None
        self._handed_off = False
        self._stopping = False
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name="rigd-run-steps", daemon=True)

    @property
    def handed_off(self) -> bool:
        """Whether a step slept, and every actor then got a thread of its own."""
        return self._handed_off

    def stop(self, timeout: float) -> bool:
        """Stop every actor this thread steps and wait for it, at most ``timeout`` s.

        Returns whether it ended. A step that never returns keeps it: its actors
        are then left to it (``control.thread`` an ended thread), so their
        ``__rigd_stop__`` does not wait for it again, one actor after another.
        Once handed off, this thread is one actor's as any other's, and this
        does nothing: the actors' stops, in their order, stop them.
        """
        with self._lock:
            if self._handed_off:
                return True
            self._stopping = True
            for actor in self._actors:
                control = actor.__dict__.get("_rigd_control")
                if control is not None and control.thread is self.thread:
                    control.stop.set()
                    control.running.set()
        self.thread.join(timeout)
        if not self.thread.is_alive():
            return True
        for actor in self._actors:
            control = actor.__dict__.get("_rigd_control")
            if control is not None and control.thread is self.thread:
                control.thread = _ENDED
        return False

    def _run(self) -> None:
        self._live = [_Stepped(actor) for actor in self._actors]
        self._call_before_sleeping(self._hand_off)
        try:
            self._step_in_turn()
        finally:
            self._call_before_sleeping(None)

    def _step_in_turn(self) -> None:
        live = self._live
        while live:
            if self._stopped(live):
                # Stopped: this thread steps none of them any more; their stops follow.
                for s in live:
                    s.control.idle.set()
                    s.control.thread = _ENDED
                return
            stepped = False
            # A copy: a step that ends its actor removes it from ``live``.
            for s in tuple(live):
                if s.all_ready():
                    self._step(s)
                    stepped = True
                    if self._handed_off:
                        return
            if not stepped:
                # Nothing can step without waiting: the step most likely to get
                # on (the most downstream with an input ready), else a source.
                waiting = [s for s in live if s.inputs and s.any_ready()]
                self._step(waiting[-1] if waiting else live[0])
                if self._handed_off:
                    return

    @staticmethod
    def _stopped(live: list[_Stepped]) -> bool:
        """Whether any actor's stop was asked (a loop, as ``all_ready``'s: at every frame)."""
        for s in live:  # noqa: SIM110 - the loop is the point
            if s.stop.is_set():
                return True
        return False

    def _step(self, s: _Stepped) -> None:
        self._current = s
        goes_on = step(s.actor, s.control)
        if self._handed_off:
            # It slept: every other actor has a thread now, and this one is its.
            if goes_on:
                run_steps(s.actor, s.control)
            else:
                end_steps(s.actor, s.control)
            return
        if not goes_on:
            self._live.remove(s)
            end_steps(s.actor, s.control)
            s.control.thread = _ENDED

    def _hand_off(self) -> None:
        """The current step is about to sleep: a thread for every other live actor."""
        with self._lock:
            if self._stopping:
                return  # stopped: the step sleeps as it is, and the stop waits for it
            self._hand_off_now()

    def _hand_off_now(self) -> None:
        self._handed_off = True
        for s in self._live:
            if s is self._current:
                continue
            thread = threading.Thread(
                target=run_steps, args=(s.actor, s.control), name="rigd-run-step", daemon=True
            )
            # Started first: whoever joins control.thread meanwhile joins this
            # (running) thread, never one not started yet.
            thread.start()
            s.control.thread = thread
