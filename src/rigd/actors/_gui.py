"""GUI actors: the process's main thread for the actor's own main loop.

Qt (and most GUI toolkits, and matplotlib's interactive backends) must run
on the main thread of their process. A worker serves its actor's calls on
its main thread; for an actor whose class sets ``gui = True`` it serves
them on a side thread instead (``serve_beside``) and gives the main thread
to the actor's ``__rigd_main_loop__``, which runs whatever the actor hands
it (``GuiLoop``): ``rigd.Actor`` hands it ``gui_main`` each time a run
starts. improv runs its visual actor the same way, in the process of its
own, on its main thread.
"""

from __future__ import annotations

import logging
import queue
import threading
import traceback
from collections.abc import Callable
from typing import Any

__all__ = ["GuiLoop", "main_loop_of", "serve_beside"]

log = logging.getLogger(__name__)


class GuiLoop:
    """Functions handed to the main thread, run there one after the other."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._requests: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._ended = threading.Event()
        self._ended.set()

    def start(self, function: Callable[[], None]) -> None:
        """Run ``function`` on the main thread (returns at once)."""
        self._ended.clear()
        self._requests.put(function)

    def wait_ended(self, timeout: float) -> bool:
        """Wait until the function last started returned; True if it did within ``timeout``."""
        return self._ended.wait(timeout)

    def serve(self) -> None:
        """Run what ``start`` hands over, forever; on the main thread."""
        while True:
            function = self._requests.get()
            try:
                function()
            except Exception as exc:  # noqa: BLE001 - the GUI's error must not end the actor
                log.error(
                    "%s: its GUI main loop raised:\n%s",
                    self._name,
                    "".join(traceback.format_exception(exc)).rstrip(),
                )
            finally:
                self._ended.set()


def main_loop_of(instance: Any) -> Callable[[], None] | None:
    """The main-thread loop of an actor whose class sets ``gui = True``, else None."""
    if getattr(type(instance), "gui", False) is not True:
        return None
    loop = getattr(instance, "__rigd_main_loop__", None)
    return loop if callable(loop) else None


def serve_beside(serve: Callable[[], None], main_loop: Callable[[], None]) -> None:
    """Serve calls (``serve``, which ends the process) on a side thread; run
    ``main_loop`` on this, the main, thread."""
    thread = threading.Thread(target=serve, name="rigd-actor-calls", daemon=True)
    thread.start()
    main_loop()
    thread.join()
