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

The recorder's parts: ``_trigger_sources`` gathers the triggers,
``_trigger_frames`` reads each event's frames back from the rings and
writes them, ``_trigger_events`` holds the records and the table's row;
this module decides which triggers are taken (armed, hold-off, merging,
the maximum) and runs the loop. ``FrameTrigger`` is in ``_frame_trigger``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from rigd.pipeline._expression import Expression
from rigd.pipeline._processor import Spec
from rigd.pipeline._recorder_options import check_intervals
from rigd.pipeline._run_file import RunFileActor
from rigd.pipeline._trigger_events import LABEL_BYTES, Event, Trigger, event_table_dtype
from rigd.pipeline._trigger_frames import EventFrames
from rigd.pipeline._trigger_sources import TriggerSources
from rigd.storage import RunWriter

__all__ = ["TriggeredRecorder"]

log = logging.getLogger("rigd.trigger")

#: Slots a recorded ring needs beyond ``pre``: the frames written while an
#: event's pre-trigger frames are read back.
RING_MARGIN = 8


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
        check_intervals(flush_interval, fsync_interval)
        self.check_place(directory, template)
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
        spec = self.trigger_spec or {}
        self._sources = TriggerSources(
            self.event_inputs,
            self.condition,
            condition_input=str(spec["input"]) if spec else None,
            fields=[str(f) for f in spec.get("fields", ())],
            edge=bool(spec.get("edge", True)),
            schedule_s=schedule_s,
        )
        self._frames: EventFrames | None = None
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
        if not isinstance(label, str) or len(label.encode()) > LABEL_BYTES:
            raise ValueError(f"a label is text of at most {LABEL_BYTES} bytes")
        if not self._armed:
            self.triggers_ignored += 1
            return False
        self._sources.soft(label)
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
        if self._writer is not None and self._frames is not None:
            self._frames.note(text)

    # -- the recording loop -----------------------------------------------------------

    def setup(self) -> None:
        inputs = dict(self.inputs)
        trigger_names = self._sources.names
        missing = sorted(trigger_names - set(inputs))
        if missing:
            raise ValueError(
                f"trigger inputs {missing} are not linked to this recorder; link them "
                f"('... -> NAME.{missing[0]}') or remove them from events/trigger"
            )
        streams = {n: r for n, r in inputs.items() if n not in trigger_names}
        if not streams:
            raise ValueError("a triggered recorder needs at least one linked input to record")
        need = self.pre + RING_MARGIN
        for name, reader in streams.items():
            slots = reader.slot_count
            policy = reader.policy.name.lower()
            if policy != "latest" or (self.pre_s is None and slots < need):
                raise ValueError(
                    f"the link into {name!r} must be 'policy: latest' with at least {need} slots "
                    f"(pre + {RING_MARGIN}; it has {policy}, {slots}): the ring "
                    "holds the pre-trigger frames, and a latest link never holds the camera back"
                )
        self._sources.attach(inputs)
        run = self.run_info
        self._writer = RunWriter(
            self.run_path(),
            # Named fields as HDF5Recorder records them (FrameStats: mean, min, max).
            [self.stream_spec(n, r) for n, r in streams.items()],
            run_id=run.get("run_id", "run"),
            pipeline=run.get("pipeline_text", ""),
            metadata=run.get("metadata") or {},
            flush_interval=self.flush_interval,
            fsync_interval=self.fsync_interval,
            tables={"events": event_table_dtype(streams)},
            # The recorder copied each frame out of the ring already: the
            # writer writes that copy itself (no second copy).
            write_buffers=0,
        )
        self.confirm_opened(created=True)
        self._frames = EventFrames(
            streams,
            self._writer,
            pre=self.pre,
            post=self.post,
            pre_s=self.pre_s,
            post_s=self.post_s,
            post_timeout_s=self.post_timeout_s,
        )
        self._open: list[Event] = []
        self._last_closed: Event | None = None
        self._last_trigger_ns: int | None = None
        self._state = "recording"

    def run_step(self) -> None:
        with self.sealed_on_failure():
            self._step()

    def _step(self) -> None:
        frames = self._frames
        assert frames is not None
        for trigger in self._sources.collect():
            self._accept(trigger, frames)
        wrote = False
        for event in list(self._open):
            wrote |= frames.advance(event)
            if event.done:
                self._close(event, frames)
        if not self._open and frames.all_ended:
            self.finish()
            return
        if not wrote and not frames.wait_for(self._open):
            # Nothing to write and no frame to wait for: wait (at most 50
            # ms) for a trigger instead.
            self._sources.wait()

    def stop(self) -> None:
        writer, frames = self._writer, self._frames
        if writer is None or frames is None:
            return
        for event in list(getattr(self, "_open", [])):
            # Stopped before the event's post frames came: keep what came.
            event.complete = False
            for window in event.windows.values():
                window.done = True
            self._close(event, frames)
        log.info("%d event(s) recorded", self.events_recorded)
        self.seal()

    # -- taking a trigger -------------------------------------------------------------

    def _accept(self, trigger: Trigger, frames: EventFrames) -> None:
        if not self._armed:
            self.triggers_ignored += 1
            return
        last = self._last_trigger_ns
        if last is not None and self.holdoff_s and trigger.time_ns - last < self.holdoff_s * 1e9:
            self.triggers_ignored += 1
            return
        for event in self._open:
            if frames.merge(event, trigger):
                self._last_trigger_ns = trigger.time_ns
                return
        closed = self._last_closed
        if closed is not None and frames.merge(closed, trigger):
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
        self._open.append(frames.open_event(trigger))
        if not self.rearm:
            self._armed = False

    def _close(self, event: Event, frames: EventFrames) -> None:
        self._open.remove(event)
        frames.update_row(event)
        self.events_recorded += 1
        self._last_closed = event
