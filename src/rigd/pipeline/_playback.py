"""FilePlayback: a recorded run replayed as a source."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from rigd.actors import Actor
from rigd.storage import StreamReader

__all__ = ["FilePlayback"]


class FilePlayback(Actor):
    """Replays one stream of a run file into ``frames``, with its ids and times.

    Args:
        path: the run file.
        stream: which stream (needed when the file has several).
        rate: ``recorded`` (the gaps between the recorded acquisition times)
            or ``max`` (as fast as the readers take them).
        loop: start over at the end instead of ending.

    Frames are read from the file straight into the ring's slot. Their
    timestamps are the recorded ones, shifted to now, so latencies measured
    downstream stay meaningful.
    """

    output_names = ("frames",)
    #: Options that name places: the daemon reads run files from its data directory only.
    place_options: ClassVar[dict[str, str]] = {"path": "data_file"}

    def __init__(
        self, path: str, stream: str | None = None, rate: str = "recorded", loop: bool = False
    ) -> None:
        if rate not in ("recorded", "max"):
            raise ValueError(f"rate must be 'recorded' or 'max', got {rate!r}")
        self.path = path
        self.stream = stream
        self.rate = rate
        self.loop = loop
        self.frames_played = 0

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        if "path" not in options:
            raise ValueError("FilePlayback needs a path option: the run file to play")
        with StreamReader(options["path"], options.get("stream")) as reader:
            return {"frames": (reader.shape, reader.dtype.str)}

    def setup(self) -> None:
        self._reader = StreamReader(self.path, self.stream)
        if not len(self._reader):
            raise ValueError(f"{self.path}: stream {self._reader.name!r} holds no frame")
        self._index = 0
        previous = self.outputs.frames.previous if "frames" in self.outputs else None
        if previous is not None:
            # Restarted after a crash: go on after the last frame the ring has.
            ids = self._reader.frame_ids
            self._index = int(np.searchsorted(ids, previous[0], side="right"))
        self._start_ns = time.time_ns()
        self._origin_ns = int(self._reader.timestamps_ns[0])

    def run_step(self) -> None:
        reader = self._reader
        if self._index >= len(reader):
            if not self.loop:
                self.finish()
                return
            self._index = 0
            self._start_ns = time.time_ns()
        i = self._index
        offset = int(reader.timestamps_ns[i]) - self._origin_ns
        if self.rate == "recorded":
            delay = (self._start_ns + offset - time.time_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
        timestamp = self._start_ns + offset if self.rate == "recorded" else time.time_ns()
        with self.outputs.frames.slot(
            frame_id=int(reader.frame_ids[i]), timestamp_ns=timestamp
        ) as view:
            reader.read_into(i, view)
        self._index += 1
        self.frames_played += 1

    def stop(self) -> None:
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()
