"""Triggered capture, end to end: real pipelines, real rings, real run files.

Each trigger kind (soft, an expression over records, an events stream from a
FrameTrigger, a schedule), overlapping events, re-arming and hold-off, the
failures areaDetector's circular-buffer users reported, and a SWMR reader
following events live.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import rigd
from rigd.pipeline import (
    Expression,
    ExpressionError,
    FrameTrigger,
    Pipeline,
    RunReport,
    plan_pipeline,
)
from rigd.storage import FrameRing
from tests.helpers import wait_until
from tests.pipeline.test_processors import drive

SHAPE = (16, 16)


def frames_with_spikes(path: Path, n: int, spikes: list[int]) -> np.ndarray:
    """Frame k is filled with k (ids readable from pixels); spike frames are bright."""
    stack = np.stack([np.full(SHAPE, k % 1000 + 10, np.uint16) for k in range(n)])
    for k in spikes:
        stack[k] = 60000
    np.save(path, stack)
    return stack


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(textwrap.dedent(text).replace("@DIR@", str(tmp_path)))
    return path


def events_of(path: str) -> tuple[np.ndarray, dict[str, Any]]:
    with h5py.File(path, "r") as f:
        events = f["events"][:]
        camera = {
            "frame_id": f["camera/frame_id"][:],
            "frames": f["camera/frames"][:],
            "dropped": f["camera/dropped"][:],
            "state": f.attrs["run_state"],
        }
    return events, camera


def start(path: Path) -> Pipeline:
    rigd.init()
    pipeline = Pipeline(plan_pipeline(path), run_id="trig")
    pipeline.start()
    return pipeline


def finish(pipeline: Pipeline) -> RunReport:
    try:
        assert pipeline.wait(60), "the pipeline did not finish"
    finally:
        report = pipeline.stop()
    return report


def check_event_frames(camera: dict[str, Any], event: Any) -> np.ndarray:
    rows = slice(event["camera_first_row"], event["camera_first_row"] + event["camera_rows"])
    ids = camera["frame_id"][rows]
    assert list(ids) == list(range(ids[0], ids[0] + len(ids))), "frames missing or out of order"
    # Each frame is the one with its id (counter frames hold id + 10).
    for frame_id, frame in zip(ids, camera["frames"][rows], strict=True):
        assert int(frame[0, 0]) in (int(frame_id) % 1000 + 10, 60000)
    return ids


CAMERA = """
name: trig
actors:
  - name: camera
    class: tests.pipeline.actors.ArraySource
    options: {path: "@DIR@/frames.npy", fps: 200, paced: true@STALL@}
  - name: stats
    class: rigd.pipeline.FrameStats
  - name: recorder
    class: rigd.pipeline.TriggeredRecorder
    options: {directory: "@DIR@/data", @OPTIONS@}
links:
  - {link: camera.frames -> stats.frames, slots: 64}
  - {link: camera.frames -> recorder.camera, policy: latest, slots: 64}
"""
STATS_LINK = "  - {link: stats.stats -> recorder.stats, slots: 256}\n"


def camera_pipeline(tmp_path: Path, options: str, stall: str = "") -> Path:
    """camera -> stats, and both into a triggered recorder (stats only if a trigger reads it)."""
    text = CAMERA.replace("@OPTIONS@", options).replace("@STALL@", stall)
    if "stats" in options:
        text += STATS_LINK
    return write(tmp_path, text)


# -- the ring's past ---------------------------------------------------------------------


def test_a_latest_reader_reads_the_rings_recent_past_and_knows_what_was_overwritten() -> None:
    with FrameRing.create("past", (4,), np.int64, slot_count=8) as ring:
        writer = ring.writer()
        reader = ring.reader("latest")
        with ring.reader() as lossless, pytest.raises(ValueError, match="policy latest"):
            lossless.get_at(0)
        for k in range(20):
            writer.put(np.full(4, k), frame_id=100 + k)
        assert reader.committed == 20
        assert reader.slot_count == 8
        with reader.get_at(15) as frame:
            assert frame.frame_id == 115
            assert int(frame.array[0]) == 15
        with pytest.raises(LookupError, match="overwritten"):
            reader.get_at(11)
        with pytest.raises(LookupError, match="not committed yet"):
            reader.get_at(20)
        assert reader.frames_dropped == 0  # reading the past is not dropping
        assert reader.wait_committed(20, timeout=0.01) == 20
        with pytest.raises(TimeoutError, match="has 20 frames, not 21"):
            reader.wait_committed(21, timeout=0.01)
        writer.close()
        with pytest.raises(rigd.exceptions.EndOfStream):
            reader.wait_committed(21, timeout=1)
        reader.close()


# -- expressions ---------------------------------------------------------------------------


def test_expressions_evaluate_with_their_history() -> None:
    from rigd.pipeline._expression import History

    e = Expression("max > 1.5 * mean_of_last(max, 3) and not min < 0", ["mean", "min", "max"])
    history = History(np, e.history)
    fired = []
    for value in [10, 10, 10, 16, 14, 30]:
        values = {"mean": 1.0, "min": 0.0, "max": float(value)}
        fired.append(bool(e.evaluate(np, values, history.past())))
        history.push(values)
    # No history for the first: NaN compares false.
    assert fired == [False, False, False, True, False, True]
    chained = Expression("0 < mean <= 2", ["mean"])
    assert bool(chained.evaluate(np, {"mean": 2.0}, {}))
    assert not bool(chained.evaluate(np, {"mean": 2.5}, {}))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('true')", "only abs\\(\\) and the \\*_of_last functions"),
        ("max.__class__", "Attribute is not allowed"),
        ("open('/etc/passwd')", "open\\(\\) is not a function here"),
        ("[m for m in max]", "ListComp is not allowed"),
        ("max[0] > 1", "Subscript is not allowed"),
        ("'1' < max", "is not a number"),
        ("exposure > 1", "'exposure' is not a value here"),
        ("max ** 99999999", "Pow is not allowed"),
        ("mean_of_last(max, 10**9)", "whole number from 1 to"),
        ("max > (", "not well formed"),
        ("max > " + " + ".join(["1"] * 120), "too long"),
        ("max > " + "1 + " * 400 + "1", "at most 1000 characters"),
        ("", "is text"),
    ],
)
def test_hostile_and_bad_expressions_are_refused_with_where(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        Expression(text, ["mean", "min", "max"])


def test_a_division_by_zero_in_a_condition_is_inf_not_an_error() -> None:
    frames = np.stack([np.full((4, 4), v, np.uint16) for v in [0, 0, 5]])
    out = drive(FrameTrigger(when="max / min > 2 or min / max > 2"), frames)
    # 0/0 is NaN (false), 5/5 is 1 (false): nothing fires, nothing raises.
    assert out == []
    dark = drive(FrameTrigger(when="max / mean_of_last(min, 2) > 2"), frames)
    assert [frame_id for frame_id, _, _ in dark] == [2]  # 5 / 0 is inf


def test_frame_trigger_fires_on_rising_edges_with_numpy() -> None:
    frames = np.stack([np.full((8, 8), v, np.uint16) for v in [5, 5, 5, 50, 50, 5, 5, 60]])
    out = drive(FrameTrigger(when="max > 2 * mean_of_last(max, 3)"), frames)
    assert [frame_id for frame_id, _, _ in out] == [3, 7]
    mean, low, high, _, _ = out[0][2]["events"]
    assert (mean, low, high) == (50.0, 50.0, 50.0)
    every = drive(FrameTrigger(when="max > 20", edge=False), frames)
    assert [frame_id for frame_id, _, _ in every] == [3, 4, 7]
    roi = np.zeros((8, 8), np.uint16)
    roi[6, 6] = 100
    inside = drive(FrameTrigger(when="max > 20", roi=[4, 4, 4, 4]), [roi])
    outside = drive(FrameTrigger(when="max > 20", roi=[0, 0, 4, 4]), [roi])
    assert (len(inside), len(outside)) == (1, 0)


# -- trigger kinds, end to end ---------------------------------------------------------------


@pytest.mark.integration
def test_a_soft_trigger_records_pre_and_post_frames_with_their_ids(tmp_path: Path) -> None:
    frames_with_spikes(tmp_path / "frames.npy", 400, [])
    pipeline = start(camera_pipeline(tmp_path, "pre: 20, post: 30, max_events: 5"))
    camera = pipeline.handle("camera")
    recorder = pipeline.handle("recorder")
    wait_until(lambda: rigd.get(camera.sent.remote()) >= 100, timeout=30, what="100 frames")
    assert rigd.get(recorder.trigger.remote("stimulus 1"))
    # A second trigger inside the first's window merges into it, label and all.
    assert rigd.get(recorder.trigger.remote("stimulus 2"))
    wait_until(
        lambda: rigd.get(recorder.status.remote())["events"] == 1, timeout=30, what="the event"
    )
    report = finish(pipeline)
    events, cam = events_of(report.files[0])
    assert len(events) == 1
    event = events[0]
    assert event["label"] == b"stimulus 1; stimulus 2"
    assert event["merged"] == 2
    assert event["source"] == b"soft"
    assert event["complete"] == 1
    assert event["camera_rows"] >= 50
    ids = check_event_frames(cam, event)
    assert ids[0] >= 80  # the trigger came after frame 100 was sent
    # A soft trigger's frame is the first frame at or after it: 20 frames in.
    assert event["trigger_frame_id"] == ids[20]
    assert len(cam["dropped"]) == 0
    assert cam["state"] == "complete"


@pytest.mark.integration
def test_an_expression_over_frame_stats_triggers_on_the_bright_frames(tmp_path: Path) -> None:
    frames_with_spikes(tmp_path / "frames.npy", 400, [150, 300])
    options = (
        "pre: 10, post: 10, trigger: {input: stats, fields: [mean, min, max], "
        "when: 'max > 5 * mean_of_last(max, 20)'}"
    )
    report = finish(start(camera_pipeline(tmp_path, options)))
    events, cam = events_of(report.files[0])
    assert list(events["trigger_frame_id"]) == [150, 300]
    assert list(events["source"]) == [b"stats", b"stats"]
    for event, spike in zip(events, (150, 300), strict=True):
        ids = check_event_frames(cam, event)
        assert list(ids) == list(range(spike - 10, spike + 10))
        assert event["complete"] == 1
    # Between events the ids jump: that is not a drop.
    assert len(cam["dropped"]) == 0


@pytest.mark.integration
def test_a_frame_trigger_events_stream_and_overlapping_events_merge(tmp_path: Path) -> None:
    frames_with_spikes(tmp_path / "frames.npy", 300, [100, 115, 200])
    path = write(
        tmp_path,
        """
        name: trig
        actors:
          - name: camera
            class: tests.pipeline.actors.ArraySource
            options: {path: "@DIR@/frames.npy", fps: 200, paced: true}
          - name: detector
            class: rigd.pipeline.FrameTrigger
            options: {when: "max > 5 * mean_of_last(max, 20)"}
          - name: recorder
            class: rigd.pipeline.TriggeredRecorder
            options: {directory: "@DIR@/data", pre: 10, post: 10, events: [detector]}
        links:
          - {link: camera.frames -> detector.frames, slots: 64}
          - {link: camera.frames -> recorder.camera, policy: latest, slots: 64}
          - {link: detector.events -> recorder.detector, slots: 64}
        """,
    )
    report = finish(start(path))
    events, cam = events_of(report.files[0])
    # 100 and 115 overlap (90-110 and 105-125): one event, every frame once.
    assert list(events["trigger_frame_id"]) == [100, 200]
    assert list(events["merged"]) == [2, 1]
    first = check_event_frames(cam, events[0])
    assert list(first) == list(range(90, 125))
    assert list(check_event_frames(cam, events[1])) == list(range(190, 210))
    assert len(set(cam["frame_id"])) == len(cam["frame_id"])  # no frame twice


@pytest.mark.integration
@pytest.mark.parametrize(
    ("arming", "recorded", "ignored"),
    [
        # 60 comes 50 ms after 50: held off; 200 comes 750 ms after.
        ("holdoff_s: 0.5", [50, 200], 1),
        # One shot: the first event disarms; 60 and 200 are ignored.
        ("rearm: false", [50], 2),
    ],
)
def test_hold_off_and_one_shot_arming(
    tmp_path: Path, arming: str, recorded: list[int], ignored: int
) -> None:
    frames_with_spikes(tmp_path / "frames.npy", 300, [50, 60, 200])
    options = (
        f"pre: 2, post: 2, {arming}, trigger: {{input: stats, "
        "fields: [mean, min, max], when: 'max > 50000'}"
    )
    pipeline = start(camera_pipeline(tmp_path, options))
    recorder = pipeline.handle("recorder")
    camera = pipeline.handle("camera")
    wait_until(lambda: rigd.get(camera.sent.remote()) == 300, timeout=30, what="all frames")
    wait_until(
        lambda: rigd.get(recorder.status.remote())["triggers_ignored"] == ignored,
        timeout=30,
        what=f"{ignored} trigger(s) ignored",
    )
    report = finish(pipeline)
    events, _ = events_of(report.files[0])
    assert list(events["trigger_frame_id"]) == recorded


def test_a_triggered_recorder_names_the_fields_of_a_records_stream_it_records(
    tmp_path: Path,
) -> None:
    frames_with_spikes(tmp_path / "frames.npy", 200, [])
    text = CAMERA.replace("@OPTIONS@", "pre: 0, post: 5, schedule_s: 0.3").replace("@STALL@", "")
    text += "  - {link: stats.stats -> recorder.stats, policy: latest, slots: 64}\n"
    report = finish(start(write(tmp_path, text)))
    with h5py.File(report.files[0], "r") as f:
        stats = f["stats/frames"]
        # FrameStats' own names, as HDF5Recorder records them (not field0, field1, ...).
        assert list(stats.attrs["field_names"]) == ["mean", "min", "max"]
        assert len(f["events"]) >= 1
        rows = f["events"][0]
        assert rows["stats_rows"] > 0
        first = rows["stats_first_row"]
        frame_id = int(f["stats/frame_id"][first])
        # Counter frames hold id + 10: the recorded mean is that frame's.
        assert stats[first][0] == frame_id % 1000 + 10


@pytest.mark.integration
def test_scheduled_triggers(tmp_path: Path) -> None:
    frames_with_spikes(tmp_path / "frames.npy", 300, [])
    report = finish(start(camera_pipeline(tmp_path, "pre: 0, post: 5, schedule_s: 0.4")))
    events, cam = events_of(report.files[0])
    assert 2 <= len(events) <= 4  # 1.5 s of frames, a trigger every 0.4 s
    assert set(events["source"]) == {b"schedule"}
    # The schedule runs on the wall clock: on a loaded machine its last
    # trigger can come after the camera's last frame, an event recorded as
    # incomplete with the frames it had (none at all past the end).
    *earlier, last = events
    assert all(event["complete"] for event in earlier)
    for event in events:
        if event["camera_rows"]:
            check_event_frames(cam, event)
    assert last["complete"] or last["camera_rows"] < 6


@pytest.mark.integration
def test_a_gpu_frame_trigger_on_simulated_gpus_decides_with_numpy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The same actor, placed on a (simulated) GPU: its code runs on numpy.
    monkeypatch.setenv("RIGD_FAKE_GPUS", "1")
    frames_with_spikes(tmp_path / "frames.npy", 200, [80])
    path = write(
        tmp_path,
        """
        name: trig
        actors:
          - name: camera
            class: tests.pipeline.actors.ArraySource
            options: {path: "@DIR@/frames.npy", fps: 200, paced: true}
          - name: detector
            class: rigd.pipeline.FrameTrigger
            options: {when: "max > 5 * mean_of_last(max, 20)"}
            num_gpus: 1
          - name: recorder
            class: rigd.pipeline.TriggeredRecorder
            options: {directory: "@DIR@/data", pre: 5, post: 5, events: [detector]}
        links:
          - {link: camera.frames -> detector.frames, slots: 64}
          - {link: camera.frames -> recorder.camera, policy: latest, slots: 64}
          - {link: detector.events -> recorder.detector, slots: 64}
        """,
    )
    pipeline = start(path)
    detector = pipeline.handle("detector")
    status = rigd.get(detector.status.remote())
    assert status["gpu_ids"] == [0]
    assert status["backend"] == "numpy"
    report = finish(pipeline)
    events, cam = events_of(report.files[0])
    assert list(events["trigger_frame_id"]) == [80]
    assert list(check_event_frames(cam, events[0])) == list(range(75, 85))


# -- areaDetector's reported failures ------------------------------------------------------


@pytest.mark.integration
def test_disarming_with_zero_never_fires(tmp_path: Path) -> None:
    # areaDetector: writing 0 to the soft trigger fired it.
    frames_with_spikes(tmp_path / "frames.npy", 300, [])
    pipeline = start(camera_pipeline(tmp_path, "pre: 5, post: 5"))
    recorder = pipeline.handle("recorder")
    rigd.get(recorder.arm.remote(0))
    assert not rigd.get(recorder.trigger.remote("ignored"))
    report = finish(pipeline)
    events, cam = events_of(report.files[0])
    assert len(events) == 0
    assert len(cam["frame_id"]) == 0


@pytest.mark.integration
def test_a_camera_that_stops_after_the_trigger_still_gets_its_event_sealed(tmp_path: Path) -> None:
    # areaDetector: a camera that sends no frame after the trigger never flushes.
    frames_with_spikes(tmp_path / "frames.npy", 300, [100])
    options = (
        "pre: 10, post: 50, post_timeout_s: 0.5, trigger: {input: stats, fields: [mean, min, "
        "max], when: 'max > 50000'}"
    )
    pipeline = start(camera_pipeline(tmp_path, options, stall=", stall_after: 110"))
    recorder = pipeline.handle("recorder")
    wait_until(lambda: rigd.get(recorder.status.remote())["events"] == 1, timeout=30, what="event")
    report = pipeline.stop()
    events, cam = events_of(report.files[0])
    event = events[0]
    assert event["complete"] == 0  # closed short, and says so
    assert list(check_event_frames(cam, event)) == list(range(90, 110))
    assert cam["state"] == "complete"


@pytest.mark.integration
def test_the_camera_is_never_held_back_while_events_are_written(tmp_path: Path) -> None:
    # areaDetector: pre-trigger frames dumped at once, with no pacing, stalled the chain.
    frames_with_spikes(tmp_path / "frames.npy", 600, list(range(100, 600, 40)))
    options = (
        "pre: 40, post: 40, trigger: {input: stats, fields: [mean, min, max], when: 'max > 50000'}"
    )
    report = finish(start(camera_pipeline(tmp_path, options)))
    events, cam = events_of(report.files[0])
    assert report.dropped.get("camera", 0) == 0
    assert len(cam["dropped"]) == 0
    assert len(set(cam["frame_id"])) == len(cam["frame_id"])
    assert int(events["merged"].sum()) == len(range(100, 600, 40))


@pytest.mark.integration
def test_a_ring_too_short_for_pre_s_is_said_honestly(tmp_path: Path) -> None:
    # 3 s before the trigger, but the ring holds 64 frames (0.3 s): the event
    # keeps what the ring had, says it is not complete, and the ledger counts
    # the rest (estimated from the stream's rate).
    frames_with_spikes(tmp_path / "frames.npy", 600, [])
    pipeline = start(camera_pipeline(tmp_path, "pre_s: 3.0, post: 10"))
    camera = pipeline.handle("camera")
    recorder = pipeline.handle("recorder")
    wait_until(lambda: rigd.get(camera.sent.remote()) >= 400, timeout=30, what="400 frames")
    rigd.get(recorder.trigger.remote("late"))
    wait_until(lambda: rigd.get(recorder.status.remote())["events"] == 1, timeout=30, what="event")
    report = finish(pipeline)
    events, cam = events_of(report.files[0])
    event = events[0]
    assert event["complete"] == 0
    ids = check_event_frames(cam, event)
    assert 60 <= len(ids) <= 80  # the frames still in the ring, and the 10 after
    ((first_id, count, reason, _),) = cam["dropped"]
    assert reason.startswith(b"pre-trigger frames no longer in the ring")
    assert 300 <= count <= 640  # 3 s at 200 fps, less what the ring held
    assert first_id + count == ids[0]


# -- live and bad input --------------------------------------------------------------------


@pytest.mark.integration
def test_a_swmr_reader_follows_events_as_they_are_written(tmp_path: Path) -> None:
    frames_with_spikes(tmp_path / "frames.npy", 1200, [100])
    pipeline = start(camera_pipeline(tmp_path, "pre: 5, post: 5"))
    recorder = pipeline.handle("recorder")
    camera = pipeline.handle("camera")
    wait_until(lambda: rigd.get(camera.sent.remote()) >= 50, timeout=30, what="frames")
    path = rigd.get(recorder.summary.remote())["path"]
    seen = []

    def events_live() -> int:
        with h5py.File(path, "r", swmr=True) as f:
            f["events"].refresh()
            n = len(f["events"])
            if n:
                seen.append(f["events"][n - 1]["camera_rows"])
            return n

    for k in range(2):
        # Far enough apart that the windows (5 + 5 frames) do not meet and merge.
        sent = rigd.get(camera.sent.remote())
        wait_until(lambda s=sent: rigd.get(camera.sent.remote()) >= s + 40, timeout=30)
        rigd.get(recorder.trigger.remote(f"t{k}"))
        wait_until(lambda k=k: events_live() == k + 1, timeout=30, what=f"event {k} in the file")
    report = finish(pipeline)
    events, _ = events_of(report.files[0])
    assert list(events["label"]) == [b"t0", b"t1"]
    assert list(events["camera_rows"]) == [10, 10]
    assert all(rows <= 10 for rows in seen)


@pytest.mark.parametrize(
    ("link", "options", "message"),
    [
        (
            "{link: camera.frames -> recorder.camera, slots: 64}",
            "pre: 5",
            r"line \d+, links\[0\].*must be 'policy: latest'.*it is lossless, 64",
        ),
        (
            "{link: camera.frames -> recorder.camera, policy: latest, slots: 16}",
            "pre: 100",
            r"line \d+, links\[0\].*at least 108 slots",
        ),
        (
            "{link: camera.frames -> recorder.camera, policy: latest, slots: 64}",
            "events: [ttl]",
            r"line \d+, actors\[1\].*trigger input 'ttl' is not linked",
        ),
    ],
)
def test_a_recorder_linked_the_wrong_way_is_refused_at_load(
    tmp_path: Path, link: str, options: str, message: str
) -> None:
    frames_with_spikes(tmp_path / "frames.npy", 10, [])
    path = write(
        tmp_path,
        f"""
        name: bad
        actors:
          - name: camera
            class: tests.pipeline.actors.ArraySource
            options: {{path: "@DIR@/frames.npy"}}
          - name: recorder
            class: rigd.pipeline.TriggeredRecorder
            options: {{directory: "@DIR@/data", {options}}}
        links:
          - {link}
        """,
    )
    with pytest.raises(ValueError, match=message):
        plan_pipeline(path)


def test_a_bad_expression_in_a_pipeline_file_names_its_line(tmp_path: Path) -> None:
    frames_with_spikes(tmp_path / "frames.npy", 10, [])
    path = camera_pipeline(
        tmp_path, "trigger: {input: stats, fields: [mean, min, max], when: 'max > os.getpid()'}"
    )
    with pytest.raises(ValueError, match=r"pipeline.yaml, line \d+, actors\[2\].*may be called"):
        plan_pipeline(path)


# -- on a GPU ------------------------------------------------------------------------------


@pytest.mark.gpu
def test_frame_trigger_decides_the_same_on_cupy() -> None:
    cupy = pytest.importorskip("cupy", reason="needs CuPy (the gpu extra)")
    if not os.environ.get("CUDA_VISIBLE_DEVICES") and cupy.cuda.runtime.getDeviceCount() < 1:
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 1000, (200, 256, 256)).astype(np.uint16)
    for k in (40, 41, 90, 150):
        frames[k, 100:110, 100:110] = 4000
    when = "max > 2 * mean_of_last(max, 10) or std > 1.2 * mean_of_last(std, 30)"
    on_cpu = drive(FrameTrigger(when=when), frames)
    on_gpu = drive(FrameTrigger(when=when), frames, xp=cupy)
    assert [e[0] for e in on_gpu] == [e[0] for e in on_cpu] == [40, 90, 150]
    for (_, _, gpu), (_, _, cpu) in zip(on_gpu, on_cpu, strict=True):
        np.testing.assert_allclose(gpu["events"], cpu["events"], rtol=1e-6, equal_nan=True)
