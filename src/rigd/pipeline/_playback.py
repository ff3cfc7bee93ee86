"""FilePlayback: a recorded run replayed as a source."""

from __future__ import annotations

import contextlib
import logging
import pickle
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from rigd.actors import Actor
from rigd.storage import (
    MessageWriter,
    RecordField,
    StreamReader,
    check_sealed,
    check_whole,
    describe_stream,
    dtype_text,
)

__all__ = ["FilePlayback"]

log = logging.getLogger("rigd.pipeline")

_RATES = ("recorded", "max")


class FilePlayback(Actor):
    """Replays one stream of a run file into ``frames``, with its ids and times.

    Any kind of stream: frames, records (a structured dtype, fields and
    all) or messages (declare the output's kind, as ``rigd reprocess`` does:
    ``outputs: {frames: {kind: messages}}``; each message is unpickled from
    the file and put as the object it was: replay only files you trust, as
    with ``pickle.loads``).

    Args:
        path: the run file.
        stream: which stream (needed when the file has several).
        rate: ``recorded`` (the gaps between the recorded acquisition times)
            or ``max`` (as fast as the readers take them).
        loop: start over at the end instead of ending.

    Frames are read from the file straight into the ring's slot, each with
    its recorded frame id and its recorded acquisition time (``timestamp_ns``,
    ns since the epoch) at any rate, so a replay's run file (``rigd
    reprocess``) keeps the source's ids and times. The rate paces on a
    monotonic clock of its own; a pause does not make it catch up on resume.

    A truncated file (shorter than its HDF5 superblock says:
    ``rigd.storage.check_whole``) is refused, naming the truncation. An
    unsealed one (a run still recording, or one whose writer died) is played
    as it is, with a WARNING naming ``rigd recover`` (``rigd reprocess``
    refuses it instead: a derived file must not hold a run's unflushed end).
    """

    output_names = ("frames",)
    #: Options that name places: the daemon reads run files from its data directory only.
    place_options: ClassVar[dict[str, str]] = {"path": "data_file"}

    def __init__(
        self, path: str, stream: str | None = None, rate: str = "recorded", loop: bool = False
    ) -> None:
        self.check_options({"path": path, "stream": stream, "rate": rate, "loop": loop})
        self.path = path
        self.stream = stream
        self.rate = rate
        self.loop = loop
        self.frames_played = 0

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Check the options without opening the file: planning runs it
        (``describe_outputs``), so a wrong one is refused at load with its
        file and line, and so does the constructor.

        Raises:
            ValueError: no ``path``; ``stream`` not a name; ``rate`` not
                ``recorded`` or ``max``; ``loop`` not true or false.
        """
        if "path" not in options:
            raise ValueError("FilePlayback needs a path option: the run file to play")
        stream = options.get("stream")
        if stream is not None and not isinstance(stream, str):
            raise ValueError(
                f"stream must be a stream's name in the file (`rigd inspect` lists them), "
                f"got {stream!r}"
            )
        rate = options.get("rate", "recorded")
        if rate not in _RATES:
            raise ValueError(
                "rate must be 'recorded' (the gaps between the recorded acquisition times) "
                f"or 'max' (as fast as the readers take them), got {rate!r}"
            )
        loop = options.get("loop", False)
        if not isinstance(loop, bool):
            raise ValueError(f"loop must be true or false, got {loop!r}")

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        cls.check_options(options)
        if isinstance(options["path"], str) and options["path"]:
            with contextlib.suppress(OSError):  # describe_stream names it
                check_whole(options["path"])
        described = describe_stream(options["path"], options.get("stream"))
        return {"frames": (described.shape, dtype_text(described.dtype))}

    @classmethod
    def describe_fields(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, tuple[RecordField, ...]]:
        """The stream's named columns, as recorded (a replay records them again)."""
        described = describe_stream(options["path"], options.get("stream"))
        return {"frames": described.fields} if described.fields else {}

    def setup(self) -> None:
        check_whole(self.path)
        try:
            check_sealed(self.path)
        except ValueError:
            log.warning(
                "FilePlayback plays %s, which is not sealed: its run is still recording, or "
                "its writer died; frames it had not flushed are missing. If no run writes it, "
                "seal it first with `rigd recover %s`",
                self.path,
                self.path,
            )
        self._reader = StreamReader(self.path, self.stream)
        if not len(self._reader):
            raise ValueError(f"{self.path}: stream {self._reader.name!r} holds no frame")
        messages = (
            isinstance(self.outputs.frames, MessageWriter) if "frames" in self.outputs else False
        )
        if messages != (self._reader.kind == "messages"):
            raise ValueError(
                f"{self.path}: stream {self._reader.name!r} holds {self._reader.kind}, but the "
                f"output frames is {'messages' if messages else 'not messages'}; "
                + (
                    "declare it: outputs: {frames: {kind: messages}}"
                    if not messages
                    else "remove kind: messages from its outputs"
                )
            )
        self._messages = messages
        self._index = 0
        previous = self.outputs.frames.previous if "frames" in self.outputs else None
        if previous is not None:
            # Restarted after a crash: go on after the last frame the ring has.
            ids = self._reader.frame_ids
            self._index = int(np.searchsorted(ids, previous[0], side="right"))
        self._anchor(self._index)

    def _anchor(self, index: int) -> None:
        """Pace from frame ``index``: it is due now, the next ones at their recorded gaps."""
        self._start_ns = time.monotonic_ns()
        self._origin_ns = int(self._reader.timestamps_ns[min(index, len(self._reader) - 1)])

    def resume(self) -> None:
        """Restart the pacing clock: the next frame is due now (the paused time is not made up)."""
        self._anchor(self._index)

    def run_step(self) -> None:
        reader = self._reader
        if self._index >= len(reader):
            if not self.loop:
                self.finish()
                return
            self._index = 0
            self._anchor(0)
        i = self._index
        recorded = int(reader.timestamps_ns.item(i))  # item(): no numpy scalar on the way
        if self.rate == "recorded":
            delay = (self._start_ns + recorded - self._origin_ns - time.monotonic_ns()) / 1e9
            if delay > 0:
                time.sleep(delay)
        if self._messages:
            value = pickle.loads(reader.message(i))  # the recorder's own pickles
            self.outputs.frames.put(value, frame_id=int(reader.frame_ids[i]), timestamp_ns=recorded)
        else:
            with self.outputs.frames.slot(
                frame_id=int(reader.frame_ids.item(i)), timestamp_ns=recorded
            ) as view:
                reader.read_into(i, view)
        self._index += 1
        self.frames_played += 1

    def stop(self) -> None:
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.close()
