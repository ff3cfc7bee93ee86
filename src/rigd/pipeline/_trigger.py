"""Triggered capture: keep the seconds before an event, record the seconds after.

What areaDetector's circular-buffer plugin does for beamlines, built on the
rings: a ring already holds the recent past, so the pre-trigger frames are
its own history, read back when a trigger comes (``RingReader.get_at``),
never copied while nothing happens, and the camera is never held back (the
recorded links are ``latest`` links: the writer never waits for this
reader). Two actors:

- ``FrameTrigger`` decides, per frame, with an expression over the frame's
  statistics (``mean``, ``min``, ``max``, ``std``, ``sum``, optionally in an
  ROI). On a GPU actor the statistics and the expression are evaluated on
  the GPU, on the frame already uploaded; only the decision comes back. It
  writes one record per trigger (an events stream).
- ``TriggeredRecorder`` records ``pre`` frames before and ``post`` frames
  after each trigger, from every recorded stream, into one run file. Its
  triggers: a soft trigger (``trigger(label)`` through its handle), an
  events stream (every record is a trigger: a ``FrameTrigger``, a TTL line,
  a behaviour detector), an expression over a records stream evaluated per
  record, and a schedule. Overlapping windows merge into one event (no
  frame twice), a hold-off ignores triggers too soon after the last, a
  maximum ends the arming, and re-arming is automatic unless turned off.

The run file is an ordinary rigd run file whose streams hold only the
events' frames, in order, with their own frame ids and stamps, plus an
``events`` table (one row per event, written when the event starts and
updated as it fills, so a SWMR reader follows events live): the trigger's
time, frame id, source and label, how many triggers merged into it, whether
it completed, and per stream the first row and the row count of its
frames.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from rigd._exceptions import EndOfStream, RingBrokenError, WouldBlock
from rigd.pipeline._expression import Expression, History
from rigd.pipeline._processor import Emission, FrameProcessor, Spec
from rigd.pipeline._run_file import RunFileActor
from rigd.storage import DropReason, RunWriter, StreamSpec

__all__ = ["FrameTrigger", "TriggeredRecorder"]

log = logging.getLogger("rigd.trigger")

#: The statistics a FrameTrigger computes, in the order of its records.
FRAME_STATS = ("mean", "min", "max", "std", "sum")
#: Slots a recorded ring needs beyond ``pre``: the frames written while an
#: event's pre-trigger frames are read back.
RING_MARGIN = 8
_IDLE_S = 0.05
_LABEL_BYTES = 64
_SOURCE_BYTES = 32


def _decide(condition: Expression, xp: Any, values: Any, past: Any) -> bool:
    """The condition's value: a division by zero gives inf or NaN (numpy's
    rule), never an error that would stop the actor."""
    with np.errstate(all="ignore"):
        return bool(condition.evaluate(xp, values, past))


def _clip(text: str, size: int) -> bytes:
    """``text`` as UTF-8 in at most ``size`` bytes, never cutting a character."""
    return text.encode()[:size].decode("utf-8", "ignore").encode()


class FrameTrigger(FrameProcessor):
    """Decides per frame whether to trigger: ``when`` over the frame's statistics.

    Reads ``frames``; writes ``events``: one record per trigger, ``[mean, min,
    max, std, sum]`` (float64) of the triggering frame, with its frame id
    and acquisition time.

    Args:
        when: the condition, over ``mean``, ``min``, ``max``, ``std``, ``sum``
            (see ``rigd.pipeline._expression``), e.g.
            ``"max > 1.5 * mean_of_last(max, 50)"``.
        roi: ``[y, x, height, width]``: the statistics of that region only.
        edge: trigger when the condition becomes true (``true``, the default),
            or on every frame where it holds (``false``).

    On a GPU actor (``num_gpus``) the statistics and the condition are
    computed on the GPU from the uploaded frame; only the decision (one
    boolean) comes back to the host. Without one, numpy does the same.

    Raises:
        ValueError: a bad expression (with its column) or ROI, at load.
    """

    output_names = ("events",)

    def __init__(self, when: str, roi: list[int] | None = None, edge: bool = True) -> None:
        self.condition = Expression(when, FRAME_STATS)
        if roi is not None and (
            not isinstance(roi, (list, tuple))
            or len(roi) != 4
            or not all(isinstance(v, int) and v >= 0 for v in roi)
            or roi[2] < 1
            or roi[3] < 1
        ):
            raise ValueError(f"roi is [y, x, height, width] in pixels, got {roi!r}")
        self.roi = tuple(roi) if roi is not None else None
        self.edge = bool(edge)
        self.triggers = 0

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Spec]
    ) -> dict[str, Spec]:
        shape, _ = cls.frame_shape(inputs, "FrameTrigger")
        cls(**options)  # the expression checked at load, with the file's line
        roi = options.get("roi")
        if roi is not None and (roi[0] + roi[2] > shape[-2] or roi[1] + roi[3] > shape[-1]):
            raise ValueError(f"roi {list(roi)} is not inside the {shape[-2]} x {shape[-1]} frame")
        return {"events": ((len(FRAME_STATS),), "<f8")}

    def prepare(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> None:
        self._history = History(self.xp, self.condition.history)
        self._was_true = False

    def statistics_of(self, data: Any) -> dict[str, Any]:
        """The frame's (or ROI's) statistics as 0-d ``xp`` float64 arrays."""
        xp = self.xp
        if self.roi is not None:
            y, x, h, w = self.roi
            data = data[..., y : y + h, x : x + w]
        f = data.astype(xp.float64)
        return {
            "mean": f.mean(),
            "min": f.min(),
            "max": f.max(),
            "std": f.std(),
            "sum": f.sum(),
        }

    def process(self, data: Any, frame_id: int, timestamp_ns: int) -> list[Emission]:
        xp = self.xp
        values = self.statistics_of(data)
        holds = _decide(self.condition, xp, values, self._history.past())
        self._history.push(values)
        fire = holds and not (self.edge and self._was_true)
        self._was_true = holds
        if not fire:
            return []
        self.triggers += 1
        record = xp.stack(
            [xp.asarray(values.get(name, xp.nan), xp.float64) for name in FRAME_STATS]
        )
        return [Emission(frame_id, timestamp_ns, {"events": record})]

    def status(self) -> dict[str, Any]:
        """Frames in, triggers so far, the backend."""
        return {**super().status(), "triggers": self.triggers}


@dataclass
class _Trigger:
    time_ns: int
    frame_id: int
    source: str
    label: str = ""


@dataclass
class _Window:
    """One event's frames of one stream: sequence numbers in its ring."""

    start: int  # the first frame's sequence number
    end: int | None = None  # one past the last (frames), once known
    end_ns: int | None = None  # or: up to this acquisition time (seconds)
    next: int = 0  # the next to write
    first_row: int = -1
    rows: int = 0
    done: bool = False
    short: bool = False  # frames of the window were lost (the ledger says how many)
    trigger_seq: int = -1  # the trigger's frame: the first at or after its time
    trigger_id: int = -1  # that frame's id, once written


@dataclass
class _Event:
    row: int
    trigger: _Trigger
    windows: dict[str, _Window]
    merged: int = 1
    complete: bool = True
    last_progress: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> bool:
        return all(w.done for w in self.windows.values())


class TriggeredRecorder(RunFileActor):
    """Records the frames around each trigger, from every recorded input, to one run file.

    Inputs: every linked input is recorded, except those named in
    ``events`` or ``trigger``. Recorded inputs must be linked with ``policy:
    latest`` and at least ``pre + 8`` slots: the ring is the pre-trigger
    buffer, and the camera is never held back.

    Args:
        pre, post: frames kept before and after the trigger (per stream: the
            trigger's frame is the first frame at or after the trigger time).
        pre_s, post_s: the same in seconds, instead (by the frames' stamps).
        events: inputs whose every record is a trigger (time and frame id
            from the record).
        trigger: ``{input: NAME, when: EXPRESSION, fields: [...]}``: an
            expression over a records input, evaluated per record (fields
            name the record's values; FrameStats writes ``[mean, min, max]``).
        schedule_s: also trigger every this many seconds from the start.
        holdoff_s: ignore triggers this soon after the last accepted one.
        max_events: stop arming after this many events.
        rearm: arm again after each event (``false``: one event, then
            ``arm()`` through the handle arms again).
        post_timeout_s: an event whose stream brings no frame for this long
            is closed short (``complete`` false in its row).
        directory, template, flush_interval, fsync_interval: as ``HDF5Recorder``.

    Raises:
        ValueError: options out of range or an input linked the wrong way, at load.
    """

    input_names = None  # any: recorded streams and trigger inputs
    #: Options that name places, for the daemon's confinement (rigd.service).
    place_options: ClassVar[dict[str, str]] = {"directory": "data_dir"}

    def __init__(
        self,
        pre: int = 100,
        post: int = 100,
        pre_s: float | None = None,
        post_s: float | None = None,
        events: Sequence[str] = (),
        trigger: Mapping[str, Any] | None = None,
        schedule_s: float | None = None,
        holdoff_s: float = 0.0,
        max_events: int | None = None,
        rearm: bool = True,
        post_timeout_s: float = 2.0,
        directory: str = "rigd-data",
        template: str = "{date}_{time}_{pipeline}_{run_id}.h5",
        flush_interval: float = 0.5,
        fsync_interval: float = 1.0,
    ) -> None:
        for name, value in (("pre", pre), ("post", post)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{name} must be a whole number of frames >= 0, got {value!r}")
        seconds: tuple[tuple[str, float | None], ...] = (
            ("pre_s", pre_s),
            ("post_s", post_s),
            ("schedule_s", schedule_s),
        )
        for name, limit in seconds:
            if limit is not None and (not isinstance(limit, (int, float)) or limit < 0):
                raise ValueError(f"{name} must be a number of seconds >= 0 or null, got {limit!r}")
        if schedule_s is not None and schedule_s <= 0:
            raise ValueError(f"schedule_s must be positive, got {schedule_s!r}")
        if not isinstance(holdoff_s, (int, float)) or holdoff_s < 0:
            raise ValueError(f"holdoff_s must be a number of seconds >= 0, got {holdoff_s!r}")
        if max_events is not None and (not isinstance(max_events, int) or max_events < 1):
            raise ValueError(f"max_events must be a whole number >= 1 or null, got {max_events!r}")
        if not isinstance(post_timeout_s, (int, float)) or post_timeout_s <= 0:
            raise ValueError(f"post_timeout_s must be positive, got {post_timeout_s!r}")
        self.pre, self.post = pre, post
        self.pre_s, self.post_s = pre_s, post_s
        self.event_inputs = tuple(events)
        self.trigger_spec = dict(trigger) if trigger else None
        self.condition: Expression | None = None
        if self.trigger_spec is not None:
            unknown = set(self.trigger_spec) - {"input", "when", "fields", "edge"}
            if unknown or not {"input", "when", "fields"} <= set(self.trigger_spec):
                raise ValueError(
                    "trigger is {input: NAME, when: EXPRESSION, fields: [names of the "
                    "record's values]} (and optionally edge); got keys "
                    f"{sorted(self.trigger_spec)}"
                )
            self.condition = Expression(
                str(self.trigger_spec["when"]), [str(f) for f in self.trigger_spec["fields"]]
            )
        self.schedule_s = schedule_s
        self.holdoff_s = float(holdoff_s)
        self.max_events = max_events
        self.rearm = bool(rearm)
        self.post_timeout_s = float(post_timeout_s)
        self.directory = directory
        self.template = template
        self.flush_interval = flush_interval
        self.fsync_interval = fsync_interval
        self._soft: queue.SimpleQueue[_Trigger] = queue.SimpleQueue()
        self._poke = threading.Event()
        self._armed = True
        super().__init__()
        self.events_recorded = 0
        self.triggers_ignored = 0

    # -- what the handle calls ------------------------------------------------------

    def trigger(self, label: str = "") -> bool:
        """A soft trigger, now (with an optional label stored in the event's row).

        Returns whether it was taken (armed); the decision on merging and
        hold-off is made in the recording loop.
        """
        if not isinstance(label, str) or len(label.encode()) > _LABEL_BYTES:
            raise ValueError(f"a label is text of at most {_LABEL_BYTES} bytes")
        if not self._armed:
            self.triggers_ignored += 1
            return False
        self._soft.put(_Trigger(time.time_ns(), -1, "soft", label))
        self._poke.set()
        return True

    def arm(self, armed: bool = True) -> None:
        """Arm (or with ``False``, disarm) the recorder. Never a trigger in itself."""
        self._armed = bool(armed)

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Spec]
    ) -> dict[str, Spec]:
        cls(**options)  # every option checked at load, with the file's line
        return {}

    @classmethod
    def check_links(
        cls, options: Mapping[str, Any], links: Mapping[str, tuple[str, int]]
    ) -> dict[str, str]:
        """At load: the links into a recorded input must be ``latest``, with
        room for ``pre`` frames; the trigger inputs must be linked.

        Returns each input's problem, naming the fix.
        """
        problems: dict[str, str] = {}
        triggers = set(options.get("events", ()))
        if options.get("trigger"):
            triggers.add(str(dict(options["trigger"]).get("input")))
        for name in sorted(triggers - set(links)):
            problems[name] = (
                f"trigger input {name!r} is not linked to this recorder; link one "
                f"('... -> RECORDER.{name}') or remove it from events/trigger"
            )
        pre = options.get("pre", 100)
        need = pre + RING_MARGIN if options.get("pre_s") is None else 2
        for name, (policy, slots) in links.items():
            if name in triggers:
                continue
            if policy.lower().rsplit(".", 1)[-1] != "latest" or slots < need:
                problems[name] = (
                    f"the link into {name!r} must be 'policy: latest' with at least {need} "
                    f"slots (it is {policy.lower().rsplit('.', 1)[-1]}, {slots}): the ring holds "
                    "the pre-trigger frames, and a latest link never holds the camera back"
                    + (
                        ""
                        if options.get("pre_s") is None
                        else "; with pre_s, give slots for "
                        "pre_s seconds at the camera's rate, plus 8"
                    )
                )
        if not set(links) - triggers:
            problems["(inputs)"] = "a triggered recorder needs at least one linked input to record"
        return problems

    def status(self) -> dict[str, Any]:
        """Armed or not, events recorded, triggers ignored (hold-off, disarmed)."""
        return {
            "armed": self._armed,
            "events": self.events_recorded,
            "open_events": len(getattr(self, "_open", [])),
            "triggers_ignored": self.triggers_ignored,
        }

    def note_event(self, text: str) -> None:
        """Put a note (an actor restarted) in every recorded stream's ledger."""
        if self._writer is not None:
            for name in self._streams:
                self._writer.note_dropped(name, 0, 0, text)

    # -- the recording loop -----------------------------------------------------------

    def setup(self) -> None:
        inputs = dict(self.inputs)
        trigger_names = set(self.event_inputs)
        if self.trigger_spec is not None:
            trigger_names.add(str(self.trigger_spec["input"]))
        missing = sorted(trigger_names - set(inputs))
        if missing:
            raise ValueError(
                f"trigger inputs {missing} are not linked to this recorder; link them "
                f"('... -> NAME.{missing[0]}') or remove them from events/trigger"
            )
        self._streams = {n: r for n, r in inputs.items() if n not in trigger_names}
        if not self._streams:
            raise ValueError("a triggered recorder needs at least one linked input to record")
        need = self.pre + RING_MARGIN
        for name, reader in self._streams.items():
            slots = reader.slot_count
            policy = reader.policy.name.lower()
            if policy != "latest" or (self.pre_s is None and slots < need):
                raise ValueError(
                    f"the link into {name!r} must be 'policy: latest' with at least {need} slots "
                    f"(pre + {RING_MARGIN}; it has {policy}, {slots}): the ring "
                    "holds the pre-trigger frames, and a latest link never holds the camera back"
                )
        self._trigger_readers = {n: inputs[n] for n in sorted(trigger_names)}
        if self.condition is not None and self.trigger_spec is not None:
            fields = [str(f) for f in self.trigger_spec["fields"]]
            source = str(self.trigger_spec["input"])
            width = int(np.prod(inputs[source].shape))
            if len(fields) != width:
                raise ValueError(
                    f"trigger fields {fields} name {len(fields)} values, but the records of "
                    f"{source!r} have {width}"
                )
            self._fields = fields
            self._history = History(np, self.condition.history)
            self._edge = bool(self.trigger_spec.get("edge", True))
            self._was_true = False
        run = self.run_info
        path = self.run_path()
        columns: list[tuple[str, Any]] = [
            ("trigger_ns", "<i8"),
            ("trigger_frame_id", "<i8"),
            ("source", f"S{_SOURCE_BYTES}"),
            ("label", f"S{_LABEL_BYTES}"),
            ("merged", "<i4"),
            ("complete", "u1"),
        ]
        for name in self._streams:
            columns += [(f"{name}_first_row", "<i8"), (f"{name}_rows", "<i8")]
        self._event_dtype = np.dtype(columns)
        self._writer = RunWriter(
            path,
            [StreamSpec(n, r.shape, r.dtype) for n, r in self._streams.items()],
            run_id=run.get("run_id", "run"),
            pipeline=run.get("pipeline_text", ""),
            metadata=run.get("metadata") or {},
            flush_interval=self.flush_interval,
            fsync_interval=self.fsync_interval,
            tables={"events": self._event_dtype},
            # The recorder copied each frame out of the ring already: the
            # writer writes that copy itself (no second copy).
            write_buffers=0,
        )
        self._open: list[_Event] = []
        self._ended: set[str] = set()
        self._stashed: list[_Trigger] = []
        self._last_closed: _Event | None = None
        self._last_trigger_ns: int | None = None
        #: Per stream: the next sequence number after the last frame written,
        #: the rows written, the last frame id written.
        self._next_seq: dict[str, int] = dict.fromkeys(self._streams, 0)
        self._rows: dict[str, int] = dict.fromkeys(self._streams, 0)
        self._last_id: dict[str, int] = dict.fromkeys(self._streams, -1)
        self._next_schedule = (
            time.monotonic() + self.schedule_s if self.schedule_s is not None else None
        )
        self._state = "recording"

    def run_step(self) -> None:
        for trigger in self._collect():
            self._accept(trigger)
        wrote = False
        for event in list(self._open):
            wrote |= self._advance(event)
            if event.done:
                self._close(event)
        if not self._open and len(self._ended) == len(self._streams):
            self.finish()
            return
        if not wrote:
            self._idle()

    def stop(self) -> None:
        writer = self._writer
        if writer is None:
            return
        for event in list(getattr(self, "_open", [])):
            # Stopped before the event's post frames came: keep what came.
            event.complete = False
            for window in event.windows.values():
                window.done = True
            self._close(event)
        log.info("%d event(s) recorded", self.events_recorded)
        self.seal()

    # -- triggers -------------------------------------------------------------------

    def _collect(self) -> list[_Trigger]:
        found, self._stashed = self._stashed, []
        while True:
            try:
                found.append(self._soft.get_nowait())
            except queue.Empty:
                break
        self._poke.clear()
        if self._next_schedule is not None and time.monotonic() >= self._next_schedule:
            self._next_schedule += self.schedule_s or 0.0
            found.append(_Trigger(time.time_ns(), -1, "schedule"))
        for name, reader in self._trigger_readers.items():
            while True:
                try:
                    frame = reader.get_nowait()
                except (WouldBlock, EndOfStream, RingBrokenError):
                    break
                found.extend(self._decide(name, frame))
        found.sort(key=lambda t: t.time_ns)
        return found

    def _decide(self, name: str, frame: Any) -> list[_Trigger]:
        """A record of a trigger input: a trigger, or not."""
        with frame:
            if name in self.event_inputs or self._holds(frame.array):
                return [_Trigger(frame.timestamp_ns, frame.frame_id, name)]
        return []

    def _holds(self, record: np.ndarray[Any, Any]) -> bool:
        assert self.condition is not None
        values = {
            name: np.float64(v) for name, v in zip(self._fields, record.reshape(-1), strict=True)
        }
        holds = _decide(self.condition, np, values, self._history.past())
        self._history.push(values)
        fire = holds and not (self._edge and self._was_true)
        self._was_true = holds
        return fire

    def _accept(self, trigger: _Trigger) -> None:
        if not self._armed:
            self.triggers_ignored += 1
            return
        last = self._last_trigger_ns
        if last is not None and self.holdoff_s and trigger.time_ns - last < self.holdoff_s * 1e9:
            self.triggers_ignored += 1
            return
        for event in self._open:
            if self._merge(event, trigger):
                self._last_trigger_ns = trigger.time_ns
                return
        closed = self._last_closed
        if closed is not None and self._merge(closed, trigger):
            # Its window met the last event's, which was already written:
            # that event opens again and goes on (no frame twice, none missing).
            self._last_closed = None
            self._open.append(closed)
            self.events_recorded -= 1
            self._last_trigger_ns = trigger.time_ns
            return
        started = self.events_recorded + len(self._open)
        if self.max_events is not None and started >= self.max_events:
            self.triggers_ignored += 1
            return
        self._last_trigger_ns = trigger.time_ns
        windows = {name: self._window(name, trigger) for name in self._streams}
        event = _Event(-1, trigger, windows)
        assert self._writer is not None
        event.row = self._writer.append_row("events", self._row(event))
        self._open.append(event)
        if not self.rearm:
            self._armed = False

    def _seq_at(self, reader: Any, time_ns: int) -> int:
        """The sequence number of the first frame acquired at or after
        ``time_ns`` (the next frame to come, if none is in the ring yet)."""
        seq = reader.committed
        oldest = max(0, seq - reader.slot_count)
        while seq > oldest:
            try:
                frame = reader.get_at(seq - 1)
            except LookupError:
                break
            stamp = frame.timestamp_ns
            reader.release(frame)
            if stamp < time_ns:
                break
            seq -= 1
        return int(seq)

    def _bounds(self, name: str, trigger: _Trigger) -> tuple[int, int | None, int | None]:
        """(first seq, one past the last seq or None, last time or None)."""
        reader = self._streams[name]
        at = self._seq_at(reader, trigger.time_ns)
        if self.pre_s is not None:
            start = self._seq_at(reader, trigger.time_ns - int(self.pre_s * 1e9))
        else:
            start = at - self.pre
        if self.post_s is not None:
            return start, None, trigger.time_ns + int(self.post_s * 1e9)
        return start, at + self.post, None

    def _window(self, name: str, trigger: _Trigger) -> _Window:
        start, end, end_ns = self._bounds(name, trigger)
        reader = self._streams[name]
        oldest = max(0, reader.committed - reader.slot_count + 1)
        # Never a frame twice: an earlier event wrote up to _next_seq.
        floor = max(0, self._next_seq[name])
        missing = 0
        if self.pre_s is not None and floor < oldest:
            # The window starts at a time: the frames older than the ring's
            # oldest, back to it, are estimated from the stream's rate.
            missing = self._frames_before_ring(reader, trigger.time_ns - int(self.pre_s * 1e9))
        elif start < oldest:
            missing = oldest - max(start, floor)
        start = max(start, floor, oldest)
        window = _Window(start=start, end=end, end_ns=end_ns, next=start)
        window.trigger_seq = self._seq_at(reader, trigger.time_ns)
        if missing > 0:
            first = self._id_at(reader, oldest)
            assert self._writer is not None
            self._writer.note_dropped(
                name,
                max(0, first - missing),
                missing,
                "pre-trigger frames no longer in the ring (make the link's slots larger)",
            )
            window.short = True
        return window

    def _id_at(self, reader: Any, seq: int) -> int:
        try:
            frame = reader.get_at(seq)
        except LookupError:
            return 0
        frame_id = int(frame.frame_id)
        reader.release(frame)
        return frame_id

    def _frames_before_ring(self, reader: Any, since_ns: int) -> int:
        """How many frames acquired since ``since_ns`` are no longer in the ring
        (estimated from the ring's own rate), 0 if the ring reaches back that far."""
        head = reader.committed
        oldest = max(0, head - reader.slot_count + 1)
        if head - oldest < 2:
            return 0
        try:
            first = reader.get_at(oldest)
            first_ns = first.timestamp_ns
            reader.release(first)
            last = reader.get_at(head - 1)
            last_ns = last.timestamp_ns
            reader.release(last)
        except LookupError:
            return 0
        if first_ns <= since_ns or last_ns <= first_ns:
            return 0
        period = (last_ns - first_ns) / (head - 1 - oldest)
        # No more than the stream ever had before the ring's oldest frame.
        return int(min(oldest, (first_ns - since_ns) // period))

    def _merge(self, event: _Event, trigger: _Trigger) -> bool:
        """Merge ``trigger`` into ``event`` if their windows meet (decided on
        the first recorded stream); then extend every stream's window."""
        first = next(iter(self._streams))
        window = event.windows[first]
        start, end, end_ns = self._bounds(first, trigger)
        if window.end_ns is not None:
            reach = trigger.time_ns - int((self.pre_s or 0) * 1e9)
            if reach > window.end_ns:
                return False
        elif window.end is not None and start > window.end:
            return False
        for name in self._streams:
            window = event.windows[name]
            _, end, end_ns = self._bounds(name, trigger)
            if end is not None and window.end is not None and end > window.end:
                window.end = end
                window.done = False
            if end_ns is not None and window.end_ns is not None and end_ns > window.end_ns:
                window.end_ns = end_ns
                window.done = False
        event.merged += 1
        if trigger.label:
            # Every label is kept (as far as the column holds them).
            labels = [x for x in (event.trigger.label, trigger.label) if x]
            event.trigger.label = "; ".join(labels)
        self._update_row(event)
        return True

    # -- writing ----------------------------------------------------------------------

    def _advance(self, event: _Event) -> bool:
        writer = self._writer
        assert writer is not None
        wrote = False
        for name, reader in self._streams.items():
            window = event.windows[name]
            while not window.done:
                if window.end is not None and window.next >= window.end:
                    window.done = True
                elif window.next >= reader.committed:
                    if name in self._ended:
                        window.done = True  # the stream ended short of the window
                        event.complete = False
                    break
                else:
                    wrote |= self._write_one(name, reader, window, writer)
        now = time.monotonic()
        if wrote:
            event.last_progress = now
            self._update_row(event)
        elif not event.done and now - event.last_progress > self.post_timeout_s:
            # A stream that sends nothing after the trigger must not keep the
            # event (and what was recorded of it) open for ever.
            log.warning(
                "an event (trigger at %d ns) got no frame for %.1f s: closed short",
                event.trigger.time_ns,
                self.post_timeout_s,
            )
            event.complete = False
            for window in event.windows.values():
                window.done = True
        return wrote

    def _write_one(self, name: str, reader: Any, window: _Window, writer: RunWriter) -> bool:
        seq = window.next
        try:
            frame = reader.get_at(seq)
        except LookupError:
            # Overwritten before it was written (the disk fell behind the
            # camera): one ledger entry for the whole run of lost frames, and
            # on from the oldest frame still in the ring.
            oldest = max(0, reader.committed - reader.slot_count + 1)
            lost = max(1, oldest - seq)
            first_id = self._last_id[name] + 1 if self._last_id[name] >= 0 else 0
            writer.note_dropped(name, first_id, lost, DropReason.RING_OVERRUN)
            writer.expect_gap(name)  # the ids after the gap are the camera's, not our estimate
            window.next = seq + lost
            self._last_id[name] = first_id + lost - 1
            window.short = True
            return False
        if window.end_ns is not None and frame.timestamp_ns > window.end_ns:
            reader.release(frame)
            window.done = True
            return False
        window.next += 1
        data = np.array(frame.array, copy=True)  # the camera may lap this slot meanwhile
        frame_id, stamp = frame.frame_id, frame.timestamp_ns
        if not reader.release(frame):
            writer.note_dropped(name, frame_id, 1, DropReason.RING_OVERRUN)
            window.short = True
            return False
        if window.rows == 0:
            window.first_row = self._rows[name]
        if seq != self._next_seq[name]:
            writer.expect_gap(name)  # between events: not a drop
        writer.write(name, data, frame_id, stamp)
        if seq == window.trigger_seq and name == next(iter(self._streams)):
            window.trigger_id = int(frame_id)  # a soft or scheduled trigger's frame
        window.rows += 1
        self._rows[name] += 1
        self._next_seq[name] = seq + 1
        self._last_id[name] = frame_id
        return True

    def _row(self, event: _Event) -> tuple[Any, ...]:
        trigger = event.trigger
        frame_id = trigger.frame_id
        if frame_id < 0:  # soft or scheduled: the first frame at or after it
            frame_id = event.windows[next(iter(self._streams))].trigger_id
        row: list[Any] = [
            trigger.time_ns,
            frame_id,
            _clip(trigger.source, _SOURCE_BYTES),
            _clip(trigger.label, _LABEL_BYTES),
            event.merged,
            int(event.complete and event.done and not any(w.short for w in event.windows.values())),
        ]
        for name in self._streams:
            window = event.windows[name]
            row += [window.first_row, window.rows]
        return tuple(row)

    def _update_row(self, event: _Event) -> None:
        assert self._writer is not None
        self._writer.update_row("events", event.row, self._row(event))

    def _close(self, event: _Event) -> None:
        self._open.remove(event)
        self._update_row(event)
        self.events_recorded += 1
        self._last_closed = event

    def _idle(self) -> None:
        """Wait (at most 50 ms) for something to do: a frame an open event
        needs, a trigger, or the end of the streams."""
        for event in self._open:
            for name, window in event.windows.items():
                if not window.done:
                    self._wait_frames(name, window.next + 1)
                    return
        for name, reader in self._streams.items():
            if name not in self._ended:
                self._wait_frames(name, reader.committed + 1, timeout=0.0)
        if self._trigger_readers:
            name, reader = next(iter(self._trigger_readers.items()))
            try:
                self._stashed.extend(self._decide(name, reader.get(timeout=_IDLE_S)))
            except (TimeoutError, EndOfStream, RingBrokenError):
                pass
            return
        self._poke.wait(_IDLE_S)

    def _wait_frames(self, name: str, count: int, timeout: float = _IDLE_S) -> None:
        try:
            self._streams[name].wait_committed(count, timeout)
        except TimeoutError:
            pass
        except (EndOfStream, RingBrokenError):
            self._ended.add(name)
