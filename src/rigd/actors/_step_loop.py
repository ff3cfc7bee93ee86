"""The step loop of a pipeline actor: ``run_step`` in a loop, and its errors.

``Actor.__rigd_run__`` (``_pipeline_actor``) starts ``run_steps`` on a thread
of its own; the supervisor pauses, resumes and stops it through its
``StepControl``. A step that raises ``EndOfStream``, or after which the
actor called ``finish()``, ends the loop, and the actor's outputs close so
everything downstream drains and ends in turn.

Errors: an exception from ``run_step`` is logged (the first with its
traceback, then at most one summary line every ``_LOG_EVERY_S``), and the
loop goes on. After ``max_step_errors`` failures in a row the actor gives
up: it leaves its last error for the supervisor and its process exits
(``EXIT_STEP_ERRORS``), and its restart policy (``max_restarts``) decides
what next. An error registered with ``add_input_lost_error`` (a ring's
producer is gone and may come back) is noted quietly and the loop waits
briefly instead; one registered with ``add_fatal_error`` (the pipeline
registers ``RecordingError``: a recording that stopped on a full disk never
records again) gives up at its first occurrence: another step could not
succeed, and a step with nothing to do must not hide it by resetting the
count; nor is the actor restarted (``_no_restart``), whatever its
``max_restarts``. This package knows no ring errors: the layer that opens
endpoints registers its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import traceback
from typing import TYPE_CHECKING

from rigd._exceptions import EndOfStream
from rigd.actors._no_restart import end_without_restart

if TYPE_CHECKING:
    from rigd.actors._pipeline_actor import Actor

__all__ = [
    "EXIT_STEP_ERRORS",
    "StepControl",
    "add_fatal_error",
    "add_input_lost_error",
    "end_steps",
    "run_steps",
    "step",
]

log = logging.getLogger("rigd.actor")

_LOG_EVERY_S = 5.0
# Exit status of an actor that gave up after too many failing steps.
EXIT_STEP_ERRORS = 70
#: The errors an input raises while its producer is gone and may come back.
_input_lost: tuple[type[BaseException], ...] = ()
#: The errors after which no step can succeed: the actor gives up at once.
_fatal: tuple[type[BaseException], ...] = ()


def add_input_lost_error(error: type[Exception]) -> None:
    """Treat ``error`` from ``run_step`` as a lost input that may come back.

    The layer that opens endpoints registers its own error (the pipeline
    registers ``RingBrokenError``: the writer upstream died). The step loop
    then notes it quietly, waits 50 ms and steps again, instead of counting
    it toward ``max_step_errors``.
    """
    global _input_lost
    if error not in _input_lost:
        _input_lost = (*_input_lost, error)


def add_fatal_error(error: type[Exception]) -> None:
    """Give up at the first ``error`` from ``run_step``, as after ``max_step_errors``.

    For an error that no later step can recover from: the pipeline registers
    ``RecordingError`` (the run file stopped on a write error, a full disk).
    The actor then leaves its last error for the supervisor and its process
    exits (``EXIT_STEP_ERRORS``), so the run fails with that cause.
    """
    global _fatal
    if error not in _fatal:
        _fatal = (*_fatal, error)


class StepControl:
    """The step loop's flags and counters, and its rate-limited error log."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.running = threading.Event()
        self.running.set()
        #: Set by the loop once it sees ``running`` cleared (no step under way).
        self.idle = threading.Event()
        self.thread = threading.Thread()
        self.steps = 0
        #: Steps failed in a row (reset by a step that succeeds).
        self.failing = 0
        self.errors = 0
        self.last_error: str | None = None
        #: The loop ended after ``max_step_errors`` (an actor run in-process; see ``_inline``).
        self.gave_up = False
        #: The last failing step raised a fatal error (``add_fatal_error``).
        self.fatal = False
        self._logged_at = 0.0
        self._unlogged = 0

    def note_error(self, name: str, exc: BaseException, quiet: bool = False) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if now - self._logged_at < _LOG_EVERY_S:
            self._unlogged += 1
            return
        if self._logged_at == 0.0 and not quiet:
            log.error(
                "%s.run_step raised:\n%s",
                name,
                "".join(traceback.format_exception(exc)).rstrip(),
            )
        else:
            log.error(
                "%s.run_step raised %s (and %d more time(s) in the last %.0f s)",
                name,
                self.last_error,
                self._unlogged,
                _LOG_EVERY_S,
            )
        self._logged_at = now
        self._unlogged = 0

    def flush_log(self, name: str) -> None:
        if self._unlogged:
            log.error(
                "%s.run_step raised %d more time(s); the last: %s",
                name,
                self._unlogged,
                self.last_error,
            )
            self._unlogged = 0


def run_steps(actor: Actor, control: StepControl) -> None:
    """Call ``actor.run_step`` in a loop until it stops, finishes or gives up.

    Runs on the actor's step thread (``Actor.__rigd_run__`` starts it); the
    supervisor pauses and stops it through ``control``.
    """
    while not control.stop.is_set():
        if not control.running.is_set():
            control.idle.set()
            control.running.wait(0.1)
            continue
        if not step(actor, control):
            break
    end_steps(actor, control)


def step(actor: Actor, control: StepControl) -> bool:
    """One turn of the step loop: ``actor.run_step`` once, its errors handled
    as ``run_steps`` handles them. Returns whether the loop goes on (False
    once the actor finished, its inputs ended, or it gave up in-process).

    An actor run in its own process that gives up exits it here
    (``EXIT_STEP_ERRORS``).
    """
    try:
        actor.run_step()
    except EndOfStream:
        return False
    except TimeoutError:
        return True  # nothing came within the step's own timeout: not an error
    except Exception as exc:  # noqa: BLE001 - a step's error must not end the pipeline
        name = actor._rigd_name()
        if control.stop.is_set() and "_rigd_outputs" not in actor.__dict__:
            # A step the stop outlived: its endpoints were removed under it
            # (``__rigd_stop__``); what that raised is not the actor's error.
            log.debug("%s.run_step ended by the stop: %s: %s", name, type(exc).__name__, exc)
            return False
        if isinstance(exc, _input_lost):
            # The actor upstream died; it comes back if its policy allows.
            control.note_error(name, exc, quiet=True)
            control.stop.wait(0.05)
            return True
        control.fatal = isinstance(exc, _fatal)
        control.failing = actor.max_step_errors if control.fatal else control.failing + 1
        control.note_error(name, exc)
        if control.failing < actor.max_step_errors:
            return True
        if actor.__dict__.get("_rigd_inline"):
            control.gave_up = True  # run inside its driver's process: end the loop only
            return False
        log.error(
            "%s: run_step failed %s; the actor exits (its restart policy decides what next)",
            name,
            "for good" if control.fatal else f"{control.failing} times in a row",
        )
        _note_last_error(actor, control.last_error)
        if control.fatal:  # no restart can fix it: none is made
            end_without_restart(
                f"its run_step raised {control.last_error}, which no restart can "
                "fix, so it ended for good"
            )
        logging.shutdown()
        os._exit(EXIT_STEP_ERRORS)
    control.failing = 0
    control.steps += 1
    return not actor.__dict__.get("_rigd_finish")


def end_steps(actor: Actor, control: StepControl) -> None:
    """After the step loop: flush its error log; an actor that ended on its own
    (not stopped) closes its outputs, so everything downstream drains and ends."""
    control.idle.set()
    control.flush_log(actor._rigd_name())
    if not control.stop.is_set():
        actor._rigd_close_outputs()


def _note_last_error(actor: Actor, text: str | None) -> None:
    """Leave the last error where the supervisor looks when this process is gone."""
    status_dir = actor.run_info.get("status_dir")
    name = actor.run_info.get("actor")
    if not status_dir or not name or not text:
        return
    try:
        with open(os.path.join(status_dir, f"{name}.error"), "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        log.warning("%s: could not leave its last error in %s: %s", name, status_dir, exc)
