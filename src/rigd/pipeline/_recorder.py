"""HDF5Recorder: the recording writer as a pipeline actor, on one or more rings.

Frames and records (structured dtypes: a compound dataset) are written from
the slot as they are; messages are stored as standard pickles (protocol 5,
buffers in band) in the stream's ``message_bytes`` (see ``RunWriter``), so
``pickle.loads`` reads each back with h5py alone.
"""

from __future__ import annotations

import inspect
import logging
import pickle
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from rigd._exceptions import EndOfStream, RecordingError, RingBrokenError, WouldBlock
from rigd.actors import get_runtime_context
from rigd.pipeline._recorder_behind import FallBehind
from rigd.pipeline._recorder_options import (
    check_intervals,
    check_streams,
    check_when_behind,
    check_write_buffers,
)
from rigd.pipeline._run_file import RunFileActor
from rigd.storage import (
    OWN_IDS,
    DropNote,
    DropReason,
    MessageReader,
    ReaderPolicy,
    RunWriter,
    SerializationError,
    end_spans,
    gap_spans,
)

__all__ = ["HDF5Recorder"]

log = logging.getLogger(__name__)

_IDLE_WAIT_S = 0.005


class HDF5Recorder(RunFileActor):
    """Records every input ring to one HDF5 file per run; each input is a stream.

    Args:
        directory: where run files go (created if missing).
        template: the file name, from ``{run_id}``, ``{date}``, ``{time}``,
            ``{pipeline}``.
        compression: ``None``, ``lz4``, ``zstd`` or ``bitshuffle-lz4``.
        flush_interval, fsync_interval: the durability contract (README).
        latency_trace: store acquisition-to-written latency per frame.
        when_behind: what a lossless frames input does when the recorder
            falls behind (a slow disk): ``"wait"`` (the ring holds the
            source back; for sources that can wait, a file played back) or
            ``"drop"`` (for live sources: at 3/4 of the ring behind, the
            oldest frames are dropped until it is 1/4 behind, each run of
            them in the ledger as ``disk_behind``; ``_recorder_behind``).
        write_buffers: raw chunks that may wait for the disk
            (``RunWriter``'s). 0, the default: each frame goes from its
            ring slot to the file with no copy, and a slow disk holds back
            only this recorder while the ring absorbs it. A recorder that
            shares its thread with the other actors (``rigd reprocess``'s
            replay, ``rigd.actors.run_on_one_thread``) takes a few, so that
            each wait for the disk holds back none of them.

    A restarted recorder reopens the same file (repairing it first) and
    records on; the frames it missed go in the ledger as ``restart``.
    """

    input_names = None  # any: each linked input is a stream
    records = True
    #: Each step takes a frame from every input that has one and lets it go
    #: before the next; it waits on one input only while it holds none.
    takes_inputs_as_they_come = True
    #: Options that name places: the daemon confines them to its data directory.
    place_options: ClassVar[dict[str, str]] = {"directory": "data_dir"}

    def __init__(
        self,
        directory: str = "rigd-data",
        template: str = "{date}_{time}_{pipeline}_{run_id}.h5",
        compression: str | None = None,
        flush_interval: float = 0.5,
        fsync_interval: float = 1.0,
        latency_trace: bool = True,
        when_behind: str = "wait",
        write_buffers: int = 0,
    ) -> None:
        check_write_buffers(write_buffers)
        check_when_behind(when_behind)
        check_streams(compression, latency_trace)
        check_intervals(flush_interval, fsync_interval)
        self.check_place(directory, template)
        self.when_behind = when_behind
        self.directory = directory
        self.template = template
        self.compression = compression
        self.flush_interval = flush_interval
        self.fsync_interval = fsync_interval
        self.latency_trace = latency_trace
        self.write_buffers = write_buffers
        super().__init__()

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, tuple[tuple[int, ...], str]]
    ) -> dict[str, tuple[tuple[int, ...], str]]:
        """No outputs; the option values are checked at load (``_recorder_options``).

        Raises:
            OptionValueError: a value refused, naming the option.
        """
        # A subclass's own defaults over the base's (its __init__ may take fewer).
        given = {**_defaults(HDF5Recorder), **_defaults(cls), **options}
        check_write_buffers(given["write_buffers"])
        check_when_behind(given["when_behind"])
        check_streams(given["compression"], given["latency_trace"])
        check_intervals(given["flush_interval"], given["fsync_interval"])
        cls.check_place(given["directory"], given["template"])
        return {}

    def setup(self) -> None:
        run = self.run_info
        path = self.run_path()
        self._readers = dict(self.inputs)
        self._open: dict[str, Any] = dict(self._readers)
        self._dropped_seen = dict.fromkeys(self._readers, 0)
        self._next_id: dict[str, int | None] = dict.fromkeys(self._readers)
        # The sources' drop notes not yet in the ledger (ids they skipped, and why).
        self._notes: dict[str, list[DropNote]] = {name: [] for name in self._readers}
        # Streams whose source numbers frames its own way (``RingWriter.own_ids``).
        self._own_ids: set[str] = set()
        self._latest = {
            name for name, reader in self._readers.items() if reader.policy is ReaderPolicy.LATEST
        }
        if path.exists() and not _restarted():
            raise FileExistsError(
                f"the run file {path} exists already: a run is never recorded into another "
                "run's file. Give this run a new run id, or put {run_id} or {time} in the "
                "recording template (recording: template:)"
            )
        resumed = path.exists()
        if resumed:
            # This recorder was restarted: record on into the file it began.
            # The notes before now are in it already, or under the restart.
            for name, reader in self._readers.items():
                self._read_notes(name, reader)
            self._notes = {name: [] for name in self._readers}
            self._writer = RunWriter.resume(
                path,
                reason=f"{DropReason.RESTART} of recorder {run.get('actor', '')}".strip(),
                flush_interval=self.flush_interval,
                fsync_interval=self.fsync_interval,
                write_buffers=self.write_buffers,
            )
        else:
            streams = [
                self.stream_spec(
                    name, reader, compression=self.compression, latency_trace=self.latency_trace
                )
                for name, reader in self._readers.items()
            ]
            self._writer = RunWriter(
                path,
                streams,
                run_id=run.get("run_id", "run"),
                pipeline=run.get("pipeline_text", ""),
                metadata=run.get("metadata") or {},
                flush_interval=self.flush_interval,
                fsync_interval=self.fsync_interval,
                # By default the ring's slots are the buffer: frames go from
                # the slot to the file with no copy, and a slow disk holds
                # back only the recorder, while the ring absorbs it.
                write_buffers=self.write_buffers,
            )
        self.confirm_opened(created=not resumed)
        self._state = "recording"
        self._turn = 0
        self._behind = FallBehind(self._writer.note_dropped) if self.when_behind == "drop" else None

    def run_step(self) -> None:
        # ``sealed_on_failure`` spelled out: a context manager at every frame
        # costs more than the rest of a step's own work.
        try:
            self._step()
        except RecordingError:
            self.seal_failed()
            raise

    def _step(self) -> None:
        if not self._open:
            self.finish()
            return
        wrote = False
        for name in list(self._open):
            try:
                wrote |= self._take(name, wait=0.0)
            except EndOfStream:
                self._end(name)
        if not wrote and self._open:
            # Nothing anywhere: sleep on one input (in turn) until it has a frame.
            names = list(self._open)
            name = names[self._turn % len(names)]
            self._turn += 1
            try:
                self._take(name, wait=_IDLE_WAIT_S if len(names) > 1 else 0.1)
            except EndOfStream:
                self._end(name)

    def _take(self, name: str, wait: float) -> bool:
        reader = self._open[name]
        writer = self._writer
        assert writer is not None
        try:
            frame = reader.get(timeout=wait)  # 0: none waiting, TimeoutError at once
        except (WouldBlock, TimeoutError):
            return False
        except RingBrokenError:
            return False  # the writer died; it may come back
        latest = name in self._latest
        if isinstance(reader, MessageReader):
            return self._take_message(name, reader, frame, latest)
        try:
            self._note_overruns(name, reader, frame.frame_id)
            if latest:
                # A latest reader can be lapped while it holds the slot: copy
                # now, keep the copy only if the slot was not overwritten.
                data = np.array(frame.array, copy=True)
            elif self._behind is None or not self._behind.drop(
                name, frame.frame_id, reader.committed - frame.seq, reader.slot_count
            ):
                writer.write(name, frame.array, frame.frame_id, frame.timestamp_ns)
        finally:
            intact = reader.release(frame)
        if latest:
            if not intact:
                return True  # a torn read: the ring counted it as dropped
            writer.write(name, data, frame.frame_id, frame.timestamp_ns)
        self._next_id[name] = frame.frame_id + 1
        return True

    def _take_message(self, name: str, reader: MessageReader, message: Any, latest: bool) -> bool:
        writer = self._writer
        assert writer is not None
        try:
            self._note_overruns(name, reader, message.frame_id)
            try:
                data: bytes | None = pickle.dumps(message.value, protocol=5)
            except SerializationError:
                if not latest:
                    raise
                data = None  # overwritten while read: release says so below
        finally:
            intact = reader.release(message)
        if data is None or not intact:
            return True  # a torn read: the ring counted it as dropped
        writer.write_message(name, data, message.frame_id, message.timestamp_ns)
        self._next_id[name] = message.frame_id + 1
        return True

    def _note_overruns(self, name: str, reader: Any, frame_id: int) -> None:
        """Put the ids missing before ``frame_id`` in the ledger, each with its
        reason: the source's drop notes (a camera's incomplete buffers), else
        ``ring_overrun`` when this reader was lapped, else ``gap``."""
        notes = self._read_notes(name, reader)
        dropped = reader.frames_dropped
        lapped = dropped - self._dropped_seen[name]
        if not notes and not lapped and name not in self._own_ids:
            return  # most frames; a gap, if any, is the writer's to note (``gap``)
        self._dropped_seen[name] = dropped
        assert self._writer is not None
        expected = self._next_id[name]
        if name in self._own_ids:
            # The source's ids skip on purpose: only its notes and the frames
            # this reader lost (as many ids from the next) are drops.
            self._writer.expect_gap(name)
            if lapped > 0 and expected is not None:
                self._writer.note_dropped(name, expected, lapped, DropReason.RING_OVERRUN)
            for note in [n for n in notes if n.first_id < frame_id]:
                count = min(note.count, frame_id - note.first_id)
                self._writer.note_dropped(name, note.first_id, count, note.reason)
            notes[:] = [n for n in notes if n.first_id >= frame_id]
            return
        fallback = DropReason.RING_OVERRUN if lapped else DropReason.GAP
        for first, count, reason in gap_spans(expected, frame_id, notes, fallback):
            self._writer.note_dropped(name, first, count, reason)

    def _read_notes(self, name: str, reader: Any) -> list[DropNote]:
        """The stream's drop notes not yet in the ledger, with the new ones read;
        an ``OWN_IDS`` marker is kept aside (the stream's ids skip on purpose)."""
        notes = self._notes[name]
        drop_notes = getattr(reader, "drop_notes", None)  # message rings carry none
        if drop_notes is None:
            return notes
        for note in drop_notes():
            if note.reason == OWN_IDS:
                self._own_ids.add(name)
            else:
                notes.append(note)
        return notes

    def _end(self, name: str) -> None:
        """The stream ``name`` ended: its last drop notes (after its last frame) go in."""
        reader = self._open.pop(name)
        notes = self._read_notes(name, reader)
        assert self._writer is not None
        for first, count, reason in end_spans(self._next_id[name], notes):
            self._writer.note_dropped(name, first, count, reason)

    def stop(self) -> None:
        behind = getattr(self, "_behind", None)
        try:
            if behind is not None and self._writer is not None:
                behind.end()  # the last run of dropped frames, in the ledger
            for name in list(self._open) if self._writer is not None else ():
                self._end(name)
        except RecordingError:
            pass  # the recording failed: seal says so
        self.seal()

    # -- callable through the handle -----------------------------------------------

    def note_event(self, text: str) -> None:
        """Put an event (an actor restarted) in every stream's ledger."""
        writer = self._writer
        if writer is None:
            return
        for name in self._readers:
            expected = self._next_id.get(name) or 0
            writer.note_dropped(name, expected, 0, text)


def _restarted() -> bool:
    """Whether this recorder's process is a restart (``max_restarts``) of the one
    that began the run's file (Ray's ``was_current_actor_reconstructed``)."""
    return get_runtime_context().was_current_actor_reconstructed


def _defaults(cls: type[HDF5Recorder]) -> dict[str, Any]:
    """The constructor's default options (what a pipeline file leaves out)."""
    return {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
