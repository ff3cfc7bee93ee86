"""What every recorder does with its run file: name it from the run, seal it, report it.

``HDF5Recorder`` (every frame) and ``TriggeredRecorder`` (the frames around
events) share this: the file's path from the run's id, pipeline and start
time; sealing at the end (the frames and drops the writer reports); the
summary the supervisor collects (``Pipeline``'s report, the daemon's runs).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rigd._exceptions import RecordingError
from rigd.actors import Actor, add_fatal_error
from rigd.pipeline._confined import FileBeneath
from rigd.pipeline._recorder_options import check_directory, check_template
from rigd.storage import MessageReader, RecordField, RunWriter, StreamSpec, run_file_path

__all__ = ["RunFileActor"]

log = logging.getLogger("rigd.recorder")

# A recording that stopped on a write error (a full disk) never records
# again: its recorder gives up at once, and the run fails with the cause,
# instead of counting the failures among steps that had nothing to write.
add_fatal_error(RecordingError)


class RunFileActor(Actor):
    """Base of recorders: one run file, sealed at ``stop``, reported by ``summary``.

    A subclass sets ``directory`` and ``template`` and opens ``self._writer``
    (a ``RunWriter``) on ``self.run_path()`` in its ``setup``.
    """

    records = True
    directory: str
    template: str

    def __init__(self) -> None:
        self._writer: RunWriter | None = None
        self._path: str | None = None
        self._state = "idle"
        self._final: dict[str, Any] = {}
        self._beneath: FileBeneath | None = None
        #: The run's failure, once the supervisor said it failed (``run_failed``).
        self._run_failure: str | None = None

    @staticmethod
    def check_place(directory: Any, template: Any) -> None:
        """Refuse a ``directory`` or file name ``template`` known bad before the
        start (``rigd.pipeline._recorder_options``); the constructors and
        planning (``describe_outputs``) call it.

        Raises:
            OptionValueError: naming the option and the fix.
        """
        check_template(template)
        check_directory(directory)

    def run_path(self) -> Path:
        """The run file's path, from the run's id, pipeline and start (``template``)."""
        run = self.run_info
        started = dt.datetime.fromisoformat(run["started"]) if "started" in run else None
        path = run_file_path(
            self.directory,
            run.get("run_id", "run"),
            template=self.template,
            pipeline=run.get("pipeline", ""),
            when=started,
        )
        root = run.get("confine_to")
        if root:
            # Under a daemon: the directory is reached beneath its data directory
            # (no symlink swapped in since its checks is followed out of it).
            self._beneath = FileBeneath(root, path)
        self._path = str(path.resolve())
        return path

    def confirm_opened(self, *, created: bool) -> None:
        """After ``self._writer`` opened ``run_path()``: check it is the file beneath
        the daemon's data directory (``FileBeneath.confirm``).

        Raises:
            PermissionError: it is not (a symlink swapped in meanwhile); the
                writer is closed and a file it ``created`` removed.
        """
        beneath, self._beneath = self._beneath, None
        if beneath is None or self._writer is None:
            return
        try:
            beneath.confirm(self._writer.fileno())
        except PermissionError:
            writer, self._writer = self._writer, None
            if writer is not None:
                with contextlib.suppress(Exception):
                    writer.close()
                if created:
                    with contextlib.suppress(OSError):
                        writer.path.unlink()
            raise

    def stream_spec(self, name: str, reader: Any, **options: Any) -> StreamSpec:
        """The stream recorded from input ``name``: the ring's shape and dtype,
        its kind, and the named fields of a records input (the upstream
        class's, e.g. FrameStats' mean, min, max; ``run_info["input_fields"]``).
        ``options``: the rest of ``StreamSpec`` (compression, latency_trace).
        """
        named = self.run_info.get("input_fields") or {}
        return StreamSpec(
            name,
            reader.shape,
            reader.dtype,
            fields=tuple(RecordField(*f) for f in named.get(name, ())),
            kind=stream_kind(reader),
            **options,
        )

    def run_failed(self, failure: str) -> None:
        """The run failed (``failure``: why, as the run's report says it): the
        file will be sealed ``run_state = "failed"`` with this ``failure``
        attribute, not ``complete``. The supervisor calls it before ``stop``
        (``_run_end.stop_graceful``), so the file is sealed once, in the right state.
        """
        self._run_failure = str(failure)

    def seal(self) -> None:
        """Close the writer: the file sealed, its final counts kept for ``summary``
        (``run_state`` ``complete``, or ``failed`` after ``run_failed``).

        Raises:
            RecordingError: the recording had failed (the file stays readable).
        """
        writer = self._writer
        if writer is None:
            return
        self._writer = None
        try:
            writer.close(failure=self._run_failure)
            self._state = "complete"  # sealed (its run_state says how the run ended)
        except Exception:
            self._state = "failed"
            raise
        finally:
            stats = writer.statistics()  # after close: the last partial chunk is in
            self._final = {
                "frames": dict(stats.frames_written),
                "dropped": dict(stats.frames_dropped),
            }
        log.info("recorded %s to %s", self._final["frames"], self._path)

    @contextlib.contextmanager
    def sealed_on_failure(self) -> Iterator[None]:
        """Around a step: if the recording fails (``RecordingError``), seal the
        file now (readable, every frame written before the error kept), then
        let the error go on: the actor gives up (``add_fatal_error``), its
        process exits and the run fails with the error's message.
        """
        try:
            yield
        except RecordingError:
            self.seal_failed()
            raise

    def seal_failed(self) -> None:
        """After a ``RecordingError``: seal the file now (``sealed_on_failure``);
        the caller raises the error on."""
        with contextlib.suppress(RecordingError):
            self.seal()  # raises the same error again: the state is "failed"

    def summary(self) -> dict[str, Any]:
        """The run file's path, frames and drops per stream, and the recorder's state."""
        if self._writer is not None:
            stats = self._writer.statistics()
            frames, dropped = dict(stats.frames_written), dict(stats.frames_dropped)
        else:
            frames = dict(self._final.get("frames", {}))
            dropped = dict(self._final.get("dropped", {}))
        return {"path": self._path, "state": self._state, "frames": frames, "dropped": dropped}


def stream_kind(reader: Any) -> str:
    """``messages``, ``records`` (a structured dtype) or ``frames``, for a reader."""
    if isinstance(reader, MessageReader):
        return "messages"
    return "records" if reader.dtype.names is not None else "frames"
