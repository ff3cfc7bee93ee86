"""``rigd reprocess``: which pipelines it replays (drops, ``record:``, records and messages)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import h5py
import numpy as np

from rigd import Actor
from rigd.pipeline import replay_pipeline
from rigd.service._reprocess import reprocess
from rigd.storage import RecordField, RunWriter, StreamSpec
from tests.pipeline.message_actors import EVENT, message
from tests.service.test_reprocess import run_file

ROOT = Path(__file__).resolve().parents[2]

LOSSY_LIVE = """
name: lossy_live
actors:
  - name: camera
    class: rigd.pipeline.SimulatedCamera
    options: {shape: [8, 12], fps: 100}
  - name: rowsum
    class: tests.pipeline.actors.RowSum
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {directory: rigd-data, when_behind: drop}
links:
  - {link: camera.frames -> rowsum.frames, policy: latest, slots: 4}
  - {link: camera.frames -> recorder.camera, slots: 4}
  - {link: rowsum.sums -> recorder.sums, slots: 4}
"""
TRIGGERED = (
    LOSSY_LIVE.replace(
        "links:",
        "  - name: trig\n    class: rigd.pipeline.TriggeredRecorder\n"
        "    options: {pre: 2, schedule_s: 1}\n"
        "links:",
    )
    + "  - {link: camera.frames -> trig.camera, policy: latest, slots: 16}\n"
)


def test_offline_nothing_drops_for_speed_and_the_new_file_says_what_was_changed(
    tmp_path: Path,
) -> None:
    # Was: when_behind: drop and latest links kept their live meaning offline;
    # a replay as fast as the disk loses frames for nothing (274 of 400 here).
    config = replay_pipeline(TRIGGERED, "run.h5", "out")
    actors = {a["name"]: a for a in config["actors"]}
    policies = {link["link"]: link.get("policy", "lossless") for link in config["links"]}
    assert actors["recorder"]["options"]["when_behind"] == "wait"
    assert policies["camera.frames -> rowsum.frames"] == "lossless"
    # A triggered recorder's pre-trigger ring is a latest link by design: kept.
    assert policies["camera.frames -> trig.camera"] == "latest"

    pipeline = tmp_path / "lossy.yaml"
    pipeline.write_text(LOSSY_LIVE)
    frames = run_file(tmp_path / "run.h5", 7, 400)

    # A process per actor: the recorder and the processor race the playback.
    (result,) = reprocess(
        pipeline, [str(tmp_path / "run.h5")], tmp_path / "out", actor_processes=True
    )

    assert result.state == "done", result.error
    with h5py.File(result.output or "", "r") as f:
        np.testing.assert_array_equal(f["camera/frames"][:], frames)
        np.testing.assert_array_equal(f["sums/frame_id"][:], 100 + np.arange(400))
        assert len(f["camera/dropped"]) == len(f["sums/dropped"]) == 0
        note = str(f.attrs["provenance"])
    assert "recorder recorder: when_behind drop -> wait" in note
    assert "link camera.frames -> rowsum.frames (line 13): latest -> lossless" in note


def test_the_calcium_examples_record_shorthand_is_replayed(tmp_path: Path) -> None:
    # Was: "the pipeline has no HDF5Recorder" for the README's record: shorthand.
    frames = np.random.default_rng(3).integers(0, 4000, (40, 512, 512), dtype=np.uint16)
    spec = StreamSpec("camera", (512, 512), np.dtype(np.uint16))
    with RunWriter(tmp_path / "calc.h5", [spec], run_id="calc") as writer:
        for k, frame in enumerate(frames):
            writer.write("camera", frame, k, 1_700_000_000_000_000_000 + k * 33_333_333)

    (result,) = reprocess(
        ROOT / "examples" / "calcium" / "pipeline.yaml", [str(tmp_path / "calc.h5")], tmp_path
    )

    assert result.state == "done", result.error
    assert result.output == str(tmp_path / "calc-reprocessed.h5")
    with h5py.File(result.output, "r") as f:
        # The streams are named as a live run of the example names them.
        assert sorted(k for k in f if k != "entry") == [
            "camera",
            "motion_shifts",
            "preview",
            "rois_traces",
        ]
        np.testing.assert_array_equal(f["camera/frames"][:], frames)
        assert f["preview/frames"].shape == (40, 256, 256)
        assert f["rois_traces/frames"].shape == (40, 3)
        assert f.attrs["run_state"] == "complete"


class DoubleRow(Actor):
    """A processor of records: each event's ``row`` doubled."""

    input_names = ("events",)
    input_kinds: ClassVar[dict[str, str]] = {"events": "records"}
    output_names = ("events",)

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"events": ((1,), EVENT)}

    def run_step(self) -> None:
        with self.inputs.events.read(timeout=1.0) as record:
            out = np.array(record.array)
            frame_id, stamp = record.frame_id, record.timestamp_ns
        out["row"] *= 2
        self.outputs.events.put(out, frame_id=frame_id, timestamp_ns=stamp)


class TraceSum(Actor):
    """A processor of messages: each message's ``k`` and the sum of its trace."""

    input_names = ("objects",)
    input_kinds: ClassVar[dict[str, str]] = {"objects": "messages"}
    output_names = ("out",)
    output_kinds: ClassVar[dict[str, str]] = {"out": "messages"}

    def run_step(self) -> None:
        with self.inputs.objects.read(timeout=1.0) as msg:
            value = {"k": msg.value["k"], "sum": float(msg.value["trace"].sum())}
            frame_id, stamp = msg.frame_id, msg.timestamp_ns
        self.outputs.out.put(value, frame_id=frame_id, timestamp_ns=stamp)


# Short links too (the rewrite read them as mappings).
KINDS = """
name: kinds
actors:
  - {name: ev, class: tests.pipeline.message_actors.Events}
  - {name: double, class: tests.service.test_reprocess_pipelines.DoubleRow}
  - {name: relay, class: tests.service.test_reprocess_pipelines.TraceSum}
  - {name: recorder, class: rigd.pipeline.HDF5Recorder}
links:
  - {link: ev.events -> double.events}
  - {link: ev.objects -> relay.objects}
  - {link: ev.events -> recorder.events}
  - {link: ev.objects -> recorder.objects}
  - double.events -> recorder.doubled
  - relay.out -> recorder.relayed
"""


def test_sources_of_records_and_messages_are_replayed_as_recorded(tmp_path: Path) -> None:
    # Was: every source became a FilePlayback of frames, and planning blamed
    # the user's link ("links frames to an input that takes records").
    specs = [
        StreamSpec("events", (1,), EVENT, kind="records"),
        StreamSpec("objects", (2,), np.dtype("<u8"), kind="messages"),
    ]
    stamps = [1_700_000_000_000_000_000 + k * 1_000_000 for k in range(30)]
    records = np.zeros((30, 1), EVENT)
    records["row"][:, 0] = np.arange(30)
    records["name"][:, 0] = [f"ev{k}".encode() for k in range(30)]
    with RunWriter(tmp_path / "run.h5", specs, run_id="kinds") as writer:
        for k in range(30):
            writer.write("events", records[k], 10 + k, stamps[k])
            writer.write_message("objects", pickle.dumps(message(k), protocol=5), 10 + k, stamps[k])
    pipeline = tmp_path / "kinds.yaml"
    pipeline.write_text(KINDS)

    (result,) = reprocess(pipeline, [str(tmp_path / "run.h5")], tmp_path / "out")

    assert result.state == "done", result.error
    with h5py.File(result.output or "", "r") as f:
        assert f["events"].attrs["rigd_kind"] == "records"
        np.testing.assert_array_equal(f["events/frames"][:], records)
        np.testing.assert_array_equal(f["doubled/frames"]["row"][:, 0], 2 * np.arange(30))
        for stream in ("events", "objects", "doubled", "relayed"):
            np.testing.assert_array_equal(f[stream]["frame_id"][:], 10 + np.arange(30))
            np.testing.assert_array_equal(f[stream]["timestamp_ns"][:], stamps)
        assert f["objects"].attrs["rigd_kind"] == "messages"
        data = f["objects/message_bytes"][:]
        replayed = [pickle.loads(data[a:b].tobytes()) for a, b in f["objects/frames"][:]]
        relayed = f["relayed/message_bytes"][:]
        sums = [pickle.loads(relayed[a:b].tobytes())["sum"] for a, b in f["relayed/frames"][:]]
    for k, value in enumerate(replayed):
        np.testing.assert_array_equal(value.pop("trace"), message(k)["trace"])
        assert value == {key: v for key, v in message(k).items() if key != "trace"}
    assert sums == [float(message(k)["trace"].sum()) for k in range(30)]


def test_a_replayed_streams_named_columns_are_recorded_again(tmp_path: Path) -> None:
    # Was: a source's 1-D frames with named columns (a DAQ's channels) came
    # back as field0, field1, ... without their units.
    fields = (RecordField("x", "V"), RecordField("y", "V"), RecordField("lick", ""))
    spec = StreamSpec("daq", (3,), np.dtype(np.float64), fields=fields)
    with RunWriter(tmp_path / "run.h5", [spec], run_id="daq") as writer:
        for k in range(20):
            writer.write("daq", np.full(3, k, np.float64), k, 1_700_000_000_000_000_000 + k)
    pipeline = tmp_path / "daq.yaml"
    pipeline.write_text(
        "actors:\n"
        "  - {name: daq, class: mylab.NotInstalled}\n"  # a source: not imported, not run
        "  - {name: recorder, class: rigd.pipeline.HDF5Recorder}\n"
        "links: [daq.frames -> recorder.daq]\n"
    )

    (result,) = reprocess(pipeline, [str(tmp_path / "run.h5")], tmp_path / "out")

    assert result.state == "done", result.error
    with h5py.File(result.output or "", "r") as f:
        frames = f["daq/frames"]
        assert list(frames.attrs["field_names"]) == ["x", "y", "lick"]
        assert list(frames.attrs["field_units"]) == ["V", "V", ""]
        np.testing.assert_array_equal(frames[:, 0], np.arange(20))


def test_a_replay_on_one_thread_gives_its_recorder_write_buffers_and_records_the_same(
    tmp_path: Path,
) -> None:
    # On one thread with the playback and the processors, a recorder that waited
    # for the disk itself (write_buffers 0, O_DIRECT) held them all back at each chunk.
    from rigd.config import load_pipeline
    from rigd.pipeline._replay_config import replay_config

    pipeline = tmp_path / "lossy.yaml"
    pipeline.write_text(LOSSY_LIVE)
    loaded = load_pipeline(pipeline)
    on_one = {
        a["name"]: a for a in replay_config(loaded, None, "out", one_thread=True).config["actors"]
    }
    in_processes = {a["name"]: a for a in replay_config(loaded, None, "out").config["actors"]}
    assert on_one["recorder"]["options"]["write_buffers"] == 4
    assert "write_buffers" not in in_processes["recorder"]["options"]

    frames = run_file(tmp_path / "run.h5", 7, 400)
    (inline,) = reprocess(pipeline, [str(tmp_path / "run.h5")], tmp_path / "one")
    (processes,) = reprocess(
        pipeline, [str(tmp_path / "run.h5")], tmp_path / "many", actor_processes=True
    )

    assert inline.state == processes.state == "done", (inline.error, processes.error)
    with h5py.File(inline.output or "", "r") as a, h5py.File(processes.output or "", "r") as b:
        np.testing.assert_array_equal(a["camera/frames"][:], frames)
        for name in ("camera/frames", "camera/frame_id", "sums/frames", "sums/frame_id"):
            np.testing.assert_array_equal(a[name][:], b[name][:])
        assert a.attrs["run_state"] == "complete"
