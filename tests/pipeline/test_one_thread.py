"""An in-process replay steps its actors in turn on one thread, and hands each a
thread of its own the moment a step would wait (``rigd.actors.run_on_one_thread``)."""

from __future__ import annotations

import glob
import threading
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from rigd.actors import Actor
from rigd.config import load_pipeline
from rigd.pipeline._inline import run_inline
from rigd.pipeline._plan import plan_pipeline
from rigd.storage import RunWriter, StreamSpec, check_sealed

PIPELINE = """
name: steps
actors:
  - {{name: camera, class: {source}, options: {source_options}}}
  - {{name: work, class: {work}}}
  - {{name: recorder, class: rigd.pipeline.HDF5Recorder, options: {{directory: "{out}"}}}}
links:
  - {{link: camera.frames -> work.frames, slots: {slots}}}
  - {{link: camera.frames -> recorder.camera, slots: {slots}}}
  - {{link: work.sums -> recorder.sums, slots: {slots}}}
"""


class Pairs(Actor):
    """Sums the first row of two frames at a time: a step that needs two frames."""

    input_names = ("frames",)
    output_names = ("sums",)

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"sums": ((1,), "<i8")}

    def run_step(self) -> None:
        total = np.zeros(1, np.int64)
        for _ in range(2):
            with self.inputs.frames.read(timeout=5.0) as frame:
                total[0] += int(frame.array[0].sum())
                frame_id = frame.frame_id
        self.outputs.sums.put(total, frame_id=frame_id)


class Burst(Actor):
    """A source that writes five frames a step (frame k is all k), 40 in all."""

    output_names = ("frames",)

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"frames": ((8, 12), "<u2")}

    def __init__(self) -> None:
        self.k = 0

    def run_step(self) -> None:
        for _ in range(5):
            self.outputs.frames.put(np.full((8, 12), self.k, np.uint16), frame_id=self.k)
            self.k += 1
        if self.k >= 40:
            self.finish()


def _run_file(path: Path, count: int) -> np.ndarray:
    frames = np.random.default_rng(7).integers(0, 4000, (count, 8, 12), dtype=np.uint16)
    with RunWriter(path, [StreamSpec("camera", (8, 12), np.dtype(np.uint16))], run_id="src") as w:
        for k, frame in enumerate(frames):
            w.write("camera", frame, 10 + k, 1_700_000_000_000_000_000 + k)
    return frames


def _replay(
    tmp_path: Path,
    out: str,
    work: str = "tests.pipeline.actors.RowSum",
    source: str = "rigd.pipeline.FilePlayback",
    source_options: str = "",
    slots: int = 8,
    one_thread: bool = True,
) -> dict[str, Any]:
    text = PIPELINE.format(
        source=source,
        source_options=source_options or "{}",
        work=work,
        out=tmp_path / out,
        slots=slots,
    )
    report = run_inline(
        plan_pipeline(load_pipeline("<test>", text=text)),
        f"run-{out}",
        timeout=60,
        one_thread=one_thread,
    )
    return dict(report)


def _played(tmp_path: Path) -> str:
    return f'{{path: "{tmp_path / "source.h5"}", stream: camera, rate: max}}'


def _stepping_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("rigd-run-step")]


def _recorded(path: str) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {
            "camera": f["camera/frames"][:],
            "ids": f["camera/frame_id"][:],
            "sums": f["sums/frames"][:],
        }


def test_a_replay_steps_on_one_thread_and_records_what_a_thread_per_actor_records(
    tmp_path: Path,
) -> None:
    frames = _run_file(tmp_path / "source.h5", 200)

    one = _replay(tmp_path, "one", source_options=_played(tmp_path))
    threads = _replay(tmp_path, "threads", source_options=_played(tmp_path), one_thread=False)

    assert one["stepping"] == "one thread"
    assert threads["stepping"] == "a thread per actor"
    assert one["frames"] == threads["frames"] == {"camera": 200, "sums": 200}
    (one_file,), (threads_file,) = one["files"], threads["files"]
    a, b = _recorded(one_file), _recorded(threads_file)
    np.testing.assert_array_equal(a["camera"], frames)
    np.testing.assert_array_equal(a["ids"], np.arange(10, 210))
    np.testing.assert_array_equal(a["sums"][:, 0], frames[:, 0, :].sum(axis=1))
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert _stepping_threads() == []
    assert glob.glob("/dev/shm/steps-*") == []


def test_a_step_that_needs_two_frames_hands_every_actor_a_thread(tmp_path: Path) -> None:
    frames = _run_file(tmp_path / "source.h5", 60)

    report = _replay(
        tmp_path,
        "pairs",
        work=f"{__name__}.Pairs",
        source_options=_played(tmp_path),
        slots=2,
    )

    # Its first step waits for a second frame, which only the source's own thread can write.
    assert report["stepping"] == "handed off"
    assert report["frames"] == {"camera": 60, "sums": 30}
    got = _recorded(report["files"][0])
    np.testing.assert_array_equal(got["camera"], frames)
    rows = frames[:, 0, :].sum(axis=1)
    np.testing.assert_array_equal(got["sums"][:, 0], rows[0::2] + rows[1::2])
    assert _stepping_threads() == []


def test_a_source_that_writes_more_than_its_ring_holds_in_one_step_hands_off(
    tmp_path: Path,
) -> None:
    report = _replay(tmp_path, "burst", source=f"{__name__}.Burst", slots=2)

    assert report["stepping"] == "handed off"
    assert report["frames"] == {"camera": 40, "sums": 40}
    got = _recorded(report["files"][0])
    np.testing.assert_array_equal(got["ids"], np.arange(40))
    np.testing.assert_array_equal(got["camera"][:, 0, 0], np.arange(40))
    np.testing.assert_array_equal(got["sums"][:, 0], np.arange(40) * 12)
    assert _stepping_threads() == []


def test_an_actor_that_fails_on_one_thread_fails_the_replay_and_its_file_is_sealed(
    tmp_path: Path,
) -> None:
    _run_file(tmp_path / "source.h5", 30)

    with pytest.raises(RuntimeError, match=r"actor 'work' failed 5 steps in a row.*no model"):
        _replay(tmp_path, "broken", work=f"{__name__}.Broken", source_options=_played(tmp_path))

    (sealed,) = (tmp_path / "broken").iterdir()
    check_sealed(str(sealed))  # raises for a file left open
    with h5py.File(sealed, "r") as f:
        assert len(f["camera/frame_id"]) <= 30
    assert _stepping_threads() == []
    assert glob.glob("/dev/shm/steps-*") == []


class Broken(Actor):
    """Reads a frame and fails, every step."""

    input_names = ("frames",)
    output_names = ("sums",)
    max_step_errors = 5

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"sums": ((1,), "<i8")}

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0):
            raise RuntimeError("no model")


class Join(Actor):
    """Two inputs, read in step (a frame of one held while it waits for the other)."""

    input_names = ("a", "b")
    output_names = ("sums",)

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"sums": ((1,), "<i8")}

    def run_step(self) -> None:
        with self.inputs.a.read(timeout=5.0) as a, self.inputs.b.read(timeout=5.0) as b:
            self.outputs.sums.put(np.array([a.array.sum() + b.array.sum()]), frame_id=a.frame_id)


class TakesAsTheyCome(Join):
    """A join that says it takes its inputs as they come (as a recorder does)."""

    takes_inputs_as_they_come = True


JOINED = """
name: joined
actors:
  - {{name: camera, class: {source}}}
  - {{name: work, class: tests.pipeline.actors.RowSum}}
  - {{name: join, class: {join}}}
  - {{name: recorder, class: rigd.pipeline.HDF5Recorder}}
links:
  - {{link: camera.frames -> work.frames, slots: 16}}
  - {{link: camera.frames -> join.a, slots: 16}}
  - {{link: work.sums -> join.b, slots: 16}}
  - {{link: camera.frames -> recorder.camera, slots: 16, policy: {policy}}}
  - {{link: join.sums -> recorder.sums, slots: 16}}
"""


def test_on_one_thread_lossless_rings_get_few_slots_unless_a_join_may_hold_a_frame() -> None:
    from rigd.pipeline._inline import _ONE_THREAD_SLOTS, _ring_slots

    def slots(join: type[Actor], policy: str = "lossless", one_thread: bool = True) -> set[int]:
        text = JOINED.format(
            source=f"{__name__}.Burst", join=f"{__name__}.{join.__name__}", policy=policy
        )
        found = _ring_slots(plan_pipeline(load_pipeline("<test>", text=text)), one_thread)
        return {found["camera.frames"], found["work.sums"], found["join.sums"]}

    assert _ONE_THREAD_SLOTS < 16
    # A join that may hold a frame of one input while it waits for the other:
    # the file's slots must cover how far one path lags the other.
    assert slots(Join) == {16}
    assert slots(TakesAsTheyCome) == {_ONE_THREAD_SLOTS}
    assert slots(TakesAsTheyCome, one_thread=False) == {16}
    # A latest link's slots are its reader's past: that ring keeps them.
    assert slots(TakesAsTheyCome, policy="latest") == {16, _ONE_THREAD_SLOTS}
