"""LivePlot: a GUI actor drawing a records stream live with matplotlib.

``gui = True`` gives the actor its process's main thread: ``gui_main`` runs
matplotlib's loop there (``plt.pause`` pumps the window's events), while
``run_step`` reads the stream on the step thread and hands each record over
through a queue. Offscreen (no display, or ``MPLBACKEND=Agg``) it draws
into the Agg canvas all the same, and ``save`` keeps the last view.
"""

from __future__ import annotations

import collections
import queue
import threading
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

import rigd

# Backends that draw into files or memory only: nothing to show, no events.
_OFFSCREEN = ("agg", "pdf", "pgf", "ps", "svg", "cairo", "template")


class LivePlot(rigd.Actor):
    """Plot each field of the ``stats`` records against the frame id.

    Args:
        window: how many of the latest records the plot shows.
        refresh_s: seconds between redraws.
        save: a PNG file the last view is saved to when the run ends (or None).
    """

    input_names = ("stats",)
    gui: ClassVar[bool] = True

    def __init__(self, window: int = 200, refresh_s: float = 0.1, save: str | None = None) -> None:
        self.window = window
        self.refresh_s = refresh_s
        self.save = save
        self._inbox: queue.SimpleQueue[tuple[int, np.ndarray]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._drawn = {"records": 0, "draws": 0, "last_frame_id": -1, "backend": ""}
        self._threads = {"gui_main_thread": None, "step_main_thread": None}

    def run_step(self) -> None:
        with self.inputs.stats.read(timeout=0.5) as record:
            self._inbox.put((record.frame_id, np.array(record.array, dtype=float)))
        if self._threads["step_main_thread"] is None:
            self._threads["step_main_thread"] = (
                threading.current_thread() is threading.main_thread()
            )

    def gui_main(self) -> None:
        import matplotlib.pyplot as plt

        ids: collections.deque[int] = collections.deque(maxlen=self.window)
        rows: collections.deque[np.ndarray] = collections.deque(maxlen=self.window)
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.set_xlabel("frame id")
        ax.set_ylabel("value")
        lines: list[Any] = []
        backend = plt.get_backend()
        interactive = backend.lower() not in _OFFSCREEN
        if interactive:
            plt.show(block=False)
        on_main = threading.current_thread() is threading.main_thread()
        self._threads["gui_main_thread"] = on_main
        self._drawn["backend"] = backend
        while not self.stopping and plt.fignum_exists(fig.number):
            taken = 0
            while True:
                try:
                    frame_id, row = self._inbox.get_nowait()
                except queue.Empty:
                    break
                ids.append(frame_id)
                rows.append(row)
                taken += 1
            if taken:
                data = np.array(rows)
                if not lines:
                    lines = ax.plot(ids, data)
                    ax.legend([f"field {i}" for i in range(data.shape[1])], loc="upper left")
                for i, line in enumerate(lines):
                    line.set_data(ids, data[:, i])
                ax.relim()
                ax.autoscale_view()
                fig.canvas.draw()  # on this, the main, thread
                with self._lock:
                    self._drawn["records"] += taken
                    self._drawn["draws"] += 1
                    self._drawn["last_frame_id"] = ids[-1]
            # The GUI's own loop for a while: events, timers, repaint (offscreen: a wait).
            if interactive:
                plt.pause(self.refresh_s)
            else:
                fig.canvas.start_event_loop(self.refresh_s)
        if self.save:
            Path(self.save).parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(self.save)
        plt.close(fig)

    def drawn(self) -> dict[str, Any]:
        """What the GUI drew, and on which threads (callable while it runs)."""
        with self._lock:
            return {**self._drawn, **self._threads}
