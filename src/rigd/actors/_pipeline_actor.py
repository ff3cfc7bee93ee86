"""``rigd.Actor``: improv's pipeline actor (setup / run_step / stop), as a remote actor.

A pipeline actor is an ordinary rigd actor (one process, a handle, public
methods callable while it runs) whose ``run_step`` the base class calls in a
loop on a thread of its own while the pipeline runs. The supervisor drives it
through the ``__rigd_*__`` control methods below; the user writes no
signal-checking code (unlike improv's AbstractActor).

Inputs and outputs are named endpoints (ring readers and writers). This
package knows nothing of rings: the supervisor passes an *opener* (a function
of the pipeline package) with the wiring, and the actor calls it to attach.

Ending: a source ends by calling ``self.finish()`` (or raising
``EndOfStream`` from ``run_step``); the base class then closes its outputs,
so every reader downstream drains what is left and sees end of stream in its
turn. An actor whose input ends the same way finishes on its own. That is
how a pipeline stops without losing a frame.

The step loop, and what it does with a step's errors (``max_step_errors``,
``add_input_lost_error``, ``add_fatal_error``), is ``_step_loop``'s; the base
class starts it, pauses it and stops it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

from rigd._proc import pin_to_cpus
from rigd.actors import _actor_log, _context
from rigd.actors._gui import GuiLoop
from rigd.actors._step_loop import StepControl, run_steps

__all__ = ["ACTOR_STOP_GRACE_S", "Actor", "Endpoints"]

log = logging.getLogger("rigd.actor")

#: Seconds, by default, a stop waits for a step under way to return (``__rigd_stop__``'s
#: ``grace``); then the actor is stopped anyway, its step left running.
ACTOR_STOP_GRACE_S = 10.0


class Endpoints(Mapping[str, Any]):
    """An actor's inputs or outputs by name: ``self.inputs.frames`` or ``self.inputs["frames"]``."""

    def __init__(self, endpoints: Mapping[str, Any] | None = None, kind: str = "input") -> None:
        self._endpoints = dict(endpoints or {})
        self._kind = kind
        # ``self.outputs.frames`` is read at every step: each name is an
        # attribute of its own, found without ``__getattr__`` (a name the
        # class has, ``keys``, stays the method, as it is through ``__getattr__``).
        for name, endpoint in self._endpoints.items():
            if not name.startswith("_") and not hasattr(type(self), name):
                self.__dict__[name] = endpoint

    def __getitem__(self, name: str) -> Any:
        try:
            return self._endpoints[name]
        except KeyError:
            raise KeyError(
                f"no {self._kind} {name!r}; this actor's {self._kind}s are "
                f"{sorted(self._endpoints)} (links in the pipeline file make them)"
            ) from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError as exc:
            raise AttributeError(exc.args[0]) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._endpoints)

    def __len__(self) -> int:
        return len(self._endpoints)

    def __repr__(self) -> str:
        return f"Endpoints({sorted(self._endpoints)})"


class Actor:
    """Base class of pipeline actors (improv's ManagedActor).

    Override ``run_step`` (called in a loop while the pipeline runs) and, if
    needed, ``setup``, ``stop``, ``pause`` and ``resume``. Read frames from
    ``self.inputs.<name>`` and write them to ``self.outputs.<name>``. Public
    methods stay callable through the actor's handle while it runs; they run
    on another thread than ``run_step``, so guard state both touch.

    Class attributes:
        input_names: the inputs the actor reads (``None``: whatever the
            pipeline file links to it, as a recorder takes).
        output_names: the outputs it writes.
        max_step_errors: failing steps in a row after which it gives up.
        gui: ``True``: the actor runs its own main loop (``gui_main``, a Qt
            or matplotlib window) on its process's main thread while the run
            goes on, as improv's visual actor does; ``run_step`` still runs
            on its own thread and hands data over (see ``gui_main``).
        takes_inputs_as_they_come: ``True``: a step never waits for a frame
            of one input while it holds a frame of another (a recorder takes
            whichever input has a frame). Set by such a class only: an
            offline replay on one thread then gives the rings it reads
            fewer slots (``rigd.pipeline.run_inline``).
    """

    input_names: ClassVar[tuple[str, ...] | None] = ()
    output_names: ClassVar[tuple[str, ...]] = ()
    max_step_errors: ClassVar[int] = 100
    gui: ClassVar[bool] = False
    takes_inputs_as_they_come: ClassVar[bool] = False

    def __new__(cls, *args: Any, **kwargs: Any) -> Actor:
        # In an actor's process, before its constructor logs anything: its
        # lines carry its name (a pipeline names each actor after its entry).
        info = _context.actor_info
        if info is not None and info.name:
            _actor_log.install(info.name, None)
        return super().__new__(cls)

    # -- what a user overrides ---------------------------------------------------

    def setup(self) -> None:
        """Prepare before the run starts (open devices, load models)."""

    def run_step(self) -> None:
        """One step of work; called in a loop while the pipeline runs."""
        raise NotImplementedError(f"{type(self).__name__} must define run_step()")

    def stop(self) -> None:
        """Clean up after the last step (close devices, write summaries)."""

    def pause(self) -> None:
        """Called when the pipeline pauses (no steps run until ``resume``)."""

    def resume(self) -> None:
        """Called when the pipeline resumes."""

    def gui_main(self) -> None:
        """A GUI actor's main loop (``gui = True``), on its process's main thread.

        Called once the run starts (after ``setup``, beside the ``run_step``
        loop); return when the window closes or ``self.stopping`` turns
        true. Typical: ``run_step`` puts what it read on a ``queue.Queue``,
        and a timer of the toolkit (``QTimer``, ``plt.pause`` in a loop)
        draws what is there. Public methods of a GUI actor run on a side
        thread (the main one is the GUI's).
        """

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, tuple[tuple[int, ...], str]]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        """The shape and dtype of each output, from the actor's options and inputs.

        The supervisor sizes the rings with it. The default: every output
        has the shape and dtype of the first input (a processor that keeps
        frames as they are). Sources override it.
        """
        if not inputs:
            return {}
        first = next(iter(inputs.values()))
        return dict.fromkeys(cls.output_names, first)

    # -- what a user calls ---------------------------------------------------------

    @property
    def inputs(self) -> Endpoints:
        # ``is None``, not ``or``: read at every step, and ``or`` would ask its length.
        inputs = self.__dict__.get("_rigd_inputs")
        return Endpoints(kind="input") if inputs is None else inputs

    @property
    def outputs(self) -> Endpoints:
        outputs = self.__dict__.get("_rigd_outputs")
        return Endpoints(kind="output") if outputs is None else outputs

    @property
    def log(self) -> logging.Logger:
        """The logger named after this actor; its lines go to the run's log file."""
        return _actor_log.actor_logger(self._rigd_name())

    @property
    def run_info(self) -> dict[str, Any]:
        """The run this actor is part of: ``run_id``, ``pipeline``, ``started``, ``actor``, ..."""
        return dict(self.__dict__.get("_rigd_run_info", {}))

    def finish(self) -> None:
        """End this actor's run after the current step: a source calls it when done."""
        self.__dict__["_rigd_finish"] = True

    @property
    def stopping(self) -> bool:
        """True once the supervisor asked this actor to stop (a long step can check it)."""
        control = self.__dict__.get("_rigd_control")
        return bool(control and control.stop.is_set())

    # -- the supervisor's side -------------------------------------------------------

    def __rigd_attach__(self, opener: Callable[..., Any], wiring: Any) -> None:
        """Open the endpoints ``wiring`` names, with ``opener`` (the pipeline's)."""
        self.__rigd_detach__()
        cpus = getattr(wiring, "cpus", ())
        if cpus:
            # Before the step thread starts: it inherits the pinning.
            pin_to_cpus(cpus)
        run_info = dict(getattr(wiring, "run", {}))
        if run_info.get("actor"):
            _actor_log.install(str(run_info["actor"]), run_info.get("log_path"))
        inputs, outputs, close = opener(wiring)
        self.__dict__["_rigd_run_info"] = run_info
        self.__dict__["_rigd_inputs"] = Endpoints(inputs, "input")
        self.__dict__["_rigd_outputs"] = Endpoints(outputs, "output")
        self.__dict__["_rigd_close"] = close

    def __rigd_detach__(self) -> None:
        close = self.__dict__.pop("_rigd_close", None)
        if close is not None:
            close()
        self.__dict__.pop("_rigd_inputs", None)
        self.__dict__.pop("_rigd_outputs", None)
        _actor_log.uninstall()

    def __rigd_setup__(self) -> None:
        self.setup()

    def __rigd_run__(self) -> None:
        """Start the step loop (returns at once)."""
        control = self.__dict__.get("_rigd_control")
        if control is not None and control.thread.is_alive():
            return
        control = self.__rigd_prepare_steps__()
        control.thread = threading.Thread(
            target=run_steps, args=(self, control), name="rigd-run-step", daemon=True
        )
        control.thread.start()
        if self.gui:
            self._rigd_gui_loop().start(self.gui_main)

    def __rigd_prepare_steps__(self) -> StepControl:
        """A new step loop's control, for whatever steps this actor: the thread
        ``__rigd_run__`` starts, or a scheduler's (``run_on_one_thread``)."""
        control = StepControl()
        self.__dict__["_rigd_control"] = control
        self.__dict__["_rigd_finish"] = False
        return control

    def __rigd_main_loop__(self) -> None:
        """The worker's main thread, for a GUI actor: run ``gui_main`` each time a run starts."""
        self._rigd_gui_loop().serve()

    def _rigd_gui_loop(self) -> GuiLoop:
        loop = self.__dict__.get("_rigd_gui")
        if loop is None:
            loop = self.__dict__["_rigd_gui"] = GuiLoop(self._rigd_name())
        return loop

    def __rigd_pause__(self) -> None:
        control = self.__dict__.get("_rigd_control")
        if control is not None and control.running.is_set():
            control.idle.clear()
            control.running.clear()
            self.pause()
            # Return once no step runs: a source paused writes nothing more.
            if control.thread.is_alive():
                control.idle.wait(ACTOR_STOP_GRACE_S)

    def __rigd_resume__(self) -> None:
        control = self.__dict__.get("_rigd_control")
        if control is not None and not control.running.is_set():
            self.resume()
            control.running.set()

    def __rigd_wait_finished__(self, timeout: float) -> bool:
        """Wait until the step loop ends on its own (its inputs drained); True if it did."""
        control = self.__dict__.get("_rigd_control")
        if control is None:
            return True
        control.thread.join(timeout)
        return not control.thread.is_alive()

    def __rigd_stop__(self, grace: float | None = None) -> dict[str, Any]:
        """Stop the loop, run ``stop()``, close the endpoints; return what the actor did.

        A step under way is given ``grace`` seconds to return (default
        ``ACTOR_STOP_GRACE_S``; ``Pipeline.stop`` passes what is left of its timeout,
        ``stop_graceful``); then the actor is stopped anyway."""
        control = self.__dict__.get("_rigd_control")
        if control is not None:
            control.stop.set()
            control.running.set()
            if grace is None:
                grace = ACTOR_STOP_GRACE_S
            ends = time.monotonic() + grace
            if self.gui:
                self._rigd_gui_loop().wait_ended(grace)
            control.thread.join(max(0.0, ends - time.monotonic()))
            if control.thread.is_alive():
                log.warning(
                    "%s: run_step did not return within %.0f s of stop; stopping anyway",
                    type(self).__name__,
                    grace,
                )
        try:
            self.stop()
        finally:
            self._rigd_close_outputs()
            self.__rigd_detach__()
        return self.__rigd_status__()

    def __rigd_status__(self) -> dict[str, Any]:
        control = self.__dict__.get("_rigd_control")
        if control is None:
            return {"state": "ready", "steps": 0, "errors": 0, "last_error": None}
        if control.thread.is_alive():
            state = "running" if control.running.is_set() else "paused"
        else:
            state = "finished"
        return {
            "state": state,
            "steps": control.steps,
            "errors": control.errors,
            "last_error": control.last_error,
        }

    # -- inside ----------------------------------------------------------------------

    def _rigd_name(self) -> str:
        """This actor's name in the pipeline (outside one: its actor name, or its class's)."""
        run_name = self.__dict__.get("_rigd_run_info", {}).get("actor")
        if run_name:
            return str(run_name)
        info = _context.actor_info
        return info.name if info is not None and info.name else type(self).__name__

    def _rigd_close_outputs(self) -> None:
        for writer in self.outputs.values():
            close = getattr(writer, "close", None)
            if close is not None:
                close()
