"""Links for any data: records and messages between real actor processes, into run files."""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import h5py
import numpy as np
import pytest

import rigd
from rigd.config import PipelineFileError
from rigd.pipeline import Pipeline, plan_pipeline
from rigd.storage import own_store
from tests.helpers import wait_until
from tests.pipeline.message_actors import EVENT, message
from tests.pipeline.sources import write

ACTORS = "tests.pipeline.message_actors"


def leftovers() -> list[str]:
    mine = f"rigd-{os.getpid()}-"
    return [n for n in os.listdir("/dev/shm") if n.startswith(mine) and "-ring-" in n]


@pytest.fixture(autouse=True)
def _no_rings_left() -> Iterator[None]:
    yield
    assert leftovers() == []


PIPELINE = f"""
name: kinds
actors:
  - name: events
    class: {ACTORS}.Events
    options: {{n: 40}}
  - name: relay
    class: {ACTORS}.Relay
  - name: recorder
    class: rigd.pipeline.HDF5Recorder
    options: {{directory: "@DATA@"}}
links:
  - events.objects -> relay.objects
  - events.events -> recorder.events
  - events.objects -> recorder.objects
  - relay.out -> recorder.relayed
  - {{link: events.objects -> recorder.newest, policy: latest}}
"""


def test_records_and_messages_flow_between_processes_into_the_run_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rigd.pipeline")
    plan = plan_pipeline(write(tmp_path, PIPELINE))
    kinds = {ring.name: ring.kind for ring in plan.rings}
    assert kinds == {
        "events.events": "records",
        "events.objects": "messages",
        "relay.out": "messages",
    }
    pipeline = Pipeline(plan, run_id="kinds")
    pipeline.start()
    try:
        assert pipeline.wait(60), "the pipeline did not finish in time"
        relay = pipeline.handle("relay")
        # Every message's array was a read-only view of the ring's slot.
        assert rigd.get(relay.copies.remote()) == []
        # The relay's store is this process's: it put there, we read here.
        assert rigd.get(relay.store_path.remote()) == own_store().path
        assert rigd.store.get("last_k") == 39
        summary = rigd.store.get("summary")
        assert summary["seen"] == 40
        assert not summary["trace"].flags.writeable  # a view of shared memory
    finally:
        report = pipeline.stop()
    assert report.state == "stopped"
    # The run's entries are gone with the run; the kept one stays.
    left = rigd.store.keys()
    assert "last_k" not in left
    assert "store entries removed: 1 (last_k); kept: 1 (summary)" in caplog.text
    assert rigd.store.get("summary")["seen"] == 40
    rigd.store.delete("summary")

    (path,) = report.files
    with h5py.File(path, "r") as f:
        events = f["events"]
        assert events.attrs["rigd_kind"] == "records"
        records = events["frames"][:, 0]
        assert records.dtype.names == EVENT.names
        np.testing.assert_array_equal(records["row"], np.arange(40))
        np.testing.assert_allclose(records["t_acq"], np.arange(40) / 10)
        assert records["name"][7] == b"ev7"
        for stream in ("objects", "relayed"):
            group = f[stream]
            assert group.attrs["rigd_kind"] == "messages"
            np.testing.assert_array_equal(group["frame_id"][:], np.arange(40))
            assert len(group["dropped"]) == 0
        objects, data = f["objects"]["frames"][:], f["objects"]["message_bytes"]
        for k in (0, 17, 39):
            start, stop = objects[k]
            got = pickle.loads(data[start:stop].tobytes())
            want = message(k)
            assert got["rois"] == want["rois"]
            assert got["stamp"] == want["stamp"]
            np.testing.assert_array_equal(got["trace"], want["trace"])
        newest = f["newest"]  # a latest reader: what it got is whole, in order
        ids = newest["frame_id"][:]
        assert len(ids) > 0
        assert (np.diff(ids) > 0).all()
        for (start, stop), k in zip(newest["frames"][:], ids, strict=True):
            got = pickle.loads(newest["message_bytes"][start:stop].tobytes())
            np.testing.assert_array_equal(got["trace"], message(int(k))["trace"])
        start, stop = f["relayed"]["frames"][5]
        relayed = pickle.loads(f["relayed"]["message_bytes"][start:stop].tobytes())
        assert relayed == {"k": 5, "sum": float(np.arange(5, 55).sum()), "stamp": (2.5, (5, "row"))}


def test_an_oversize_or_unpicklable_message_is_refused_and_the_others_recorded(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        f"""
        name: oversize
        actors:
          - name: source
            class: {ACTORS}.Oversize
          - name: recorder
            class: rigd.pipeline.HDF5Recorder
            options: {{directory: "@DATA@"}}
        links:
          - source.objects -> recorder.objects
        """,
    )
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        assert pipeline.wait(60)
        problems = rigd.get(pipeline.handle("source").problems.remote())
    finally:
        report = pipeline.stop()
    assert report.state == "stopped"
    too_large = [p for p in problems if p.startswith("MessageTooLargeError")]
    assert len(too_large) == 1
    assert "larger than the 4096 bytes" in too_large[0]
    assert "max_message_bytes" in too_large[0]
    unpicklable = [p for p in problems if p.startswith("SerializationError")]
    assert len(unpicklable) == 3
    assert "cannot be pickled" in unpicklable[0]
    with h5py.File(report.files[0], "r") as f:
        group = f["objects"]
        np.testing.assert_array_equal(group["frame_id"][:], [0, 2])
        ((first, count, reason, _),) = group["dropped"][:]  # the refused one, in the ledger
        assert (first, count, reason) == (1, 1, b"gap")
        start, stop = group["frames"][1]
        got = pickle.loads(group["message_bytes"][start:stop].tobytes())
        np.testing.assert_array_equal(got, np.zeros(10, np.uint8))


def test_a_link_between_kinds_that_disagree_is_refused_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        actors:
          - name: events
            class: {ACTORS}.Events
          - name: relay
            class: {ACTORS}.Relay
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {{shape: [4, 4]}}
          - name: sink
            class: {ACTORS}.FramesOnly
        links:
          - camera.frames -> relay.objects
          - events.objects -> sink.frames
        """,
    )
    with pytest.raises(PipelineFileError) as info:
        plan_pipeline(path)
    problems = info.value.problems
    assert any(
        "line 13" in p and "links frames to an input that takes messages" in p for p in problems
    ), problems
    assert any(
        "line 14" in p and "links messages to an input that takes frames" in p for p in problems
    ), problems


def test_a_bad_kind_in_the_pipeline_file_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        actors:
          - name: camera
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [4, 4]}
            outputs:
              frames: {kind: records}
          - name: other
            class: rigd.pipeline.SimulatedCamera
            options: {shape: [4, 4]}
            outputs:
              frames: {kind: pictures, colour: true}
        """,
    )
    with pytest.raises(PipelineFileError) as info:
        plan_pipeline(path)
    text = str(info.value)
    assert "line 7" in text
    assert "records take a structured dtype" in text
    assert "kind 'pictures'" in text
    assert "one of frames, records, messages" in text
    assert "unknown key(s) ['colour']" in text


def test_a_messages_output_declared_in_the_file_gets_byte_slots_of_its_cap(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        f"""
        actors:
          - name: events
            class: {ACTORS}.Events
            outputs:
              objects: {{kind: messages, max_message_bytes: 200000}}
        """,
    )
    ring = next(r for r in plan_pipeline(path).rings if r.name == "events.objects")
    assert (ring.kind, ring.shape, ring.dtype) == ("messages", (200000,), "|u1")


DRIVER = """
import os, sys
import numpy as np
import rigd
from rigd.pipeline import Pipeline, plan_pipeline
pipeline = Pipeline(plan_pipeline(sys.argv[1]))
pipeline.start()
assert pipeline.wait(60)
rigd.store.put("big", np.ones(2_000_000))
print(rigd.storage.own_store().path, flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), 9)
pipeline.stop()
"""


@pytest.mark.parametrize("end", ["exit", "kill"])
def test_no_store_is_left_in_shared_memory_after_its_owner_exits_or_is_killed(
    tmp_path: Path, end: str
) -> None:
    path = write(
        tmp_path,
        f"""
        actors:
          - name: events
            class: {ACTORS}.Events
            options: {{n: 5}}
          - name: relay
            class: {ACTORS}.Relay
        links:
          - events.objects -> relay.objects
        """,
    )
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(DRIVER), str(path), end],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    store = out.stdout.strip()
    assert store.startswith("/dev/shm/rigd-"), out.stderr[-2000:]
    if end == "exit":
        assert out.returncode == 0, out.stderr[-2000:]
        assert not os.path.exists(store)
        return
    assert out.returncode == -signal.SIGKILL
    assert os.path.exists(store)  # its owner had no chance to remove it
    # The next load removes what the killed owner left.
    pipeline = Pipeline(plan_pipeline(path))
    pipeline.start()
    try:
        assert pipeline.wait(60)
    finally:
        pipeline.stop()
    rigd.store.delete("summary")  # the relay's kept entry, in this process's store
    wait_until(lambda: not os.path.exists(store), timeout=10, what="the stale store removed")
