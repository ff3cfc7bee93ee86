"""rigd on a 2-node Ray cluster: the guide's actor examples through ``rigd.init(address=...)``,
then a pipeline across the nodes, camera (A) -> processor (B) -> recorder (A), with the
processor's node removed mid-run in the last test.

One cluster for the module (starting one costs about 15 s here); the node removal comes last.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

import rigd
from rigd.pipeline import ClusterPipeline
from rigd.storage import remove_stale_rings
from rigd.util.scheduling_strategies import PlacementGroupSchedulingStrategy
from tests.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
#: A counter camera that waits for its readers: these tests count every frame.
COUNTER_GENERATOR = "pattern: counter, overflow: block"

ray = pytest.importorskip("ray", reason="Ray is the test extra's (pip install 'rigd[cluster]')")


@pytest.fixture(scope="module", autouse=True)
def connected(cluster: Any) -> Iterator[None]:
    rigd.shutdown()  # no one-machine session may be left from other modules
    facts = rigd.init(address=f"ray:{cluster.address}", namespace="guide")
    assert facts["backend"] == "ray"
    assert facts["num_cpus"] == 4
    yield
    rigd.shutdown()
    assert not ray.is_initialized()


@pytest.fixture(autouse=True)
def _no_leftovers() -> None:
    # The session is the module's (the connection to the cluster), not each test's.
    return


def died(call: Any) -> bool:
    """Whether the call raises rigd's ActorDiedError (False: it was answered)."""
    try:
        rigd.get(call(), timeout=30)
    except rigd.exceptions.ActorDiedError:
        return True
    return False


@rigd.remote
class Counter:
    def __init__(self):
        self.value = 0

    def increment(self):
        self.value += 1
        return self.value

    def get_counter(self):
        return self.value

    def node(self):
        return ray.get_runtime_context().get_node_id()

    def fail(self):
        raise ValueError("no such frame")


def test_basic_usage_prints_one(capsys: pytest.CaptureFixture[str]) -> None:
    counter = Counter.remote()

    obj_ref = counter.increment.remote()
    print(rigd.get(obj_ref))

    assert capsys.readouterr().out == "1\n"
    assert isinstance(obj_ref, ray.ObjectRef)  # Ray's own refs and handles


def test_methods_on_one_actor_run_serially_and_share_state(
    capsys: pytest.CaptureFixture[str],
) -> None:
    counters = [Counter.remote() for _ in range(2)]
    rigd.get([c.increment.remote() for c in counters])

    results = rigd.get([counters[0].increment.remote() for _ in range(5)])
    print(results)

    assert capsys.readouterr().out == "[2, 3, 4, 5, 6]\n"


def test_custom_resources_place_actors_on_the_named_node(cluster: Any) -> None:
    on_a = Counter.options(resources={"node_a": 1}).remote()
    on_b = Counter.options(resources={"node_b": 1}).remote()
    head, worker = (node.node_id for node in cluster.list_all_nodes())
    assert rigd.get(on_a.node.remote()) == head
    assert rigd.get(on_b.node.remote()) == worker


def test_passing_actor_handles_to_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    @rigd.remote
    def f(counter):
        for _ in range(10):
            time.sleep(0.01)
            counter.increment.remote()

    counter = Counter.remote()

    refs = [f.options(resources={"node_b": 0.1}).remote(counter) for _ in range(3)]

    for _ in range(3):
        time.sleep(0.01)
        print(rigd.get(counter.get_counter.remote()))
    rigd.get(refs)
    wait_until(lambda: rigd.get(counter.get_counter.remote()) == 30, what="30 increments")

    printed = [int(line) for line in capsys.readouterr().out.split()]
    assert printed == sorted(printed)


def test_named_actor_is_found_by_name_and_get_or_create_returns_it() -> None:
    counter = Counter.options(name="some_name").remote()
    rigd.get(counter.increment.remote())

    # (Ray ends a named actor once its creator's handle goes: keep it.)
    found = rigd.get_actor("some_name")
    assert rigd.get(found.get_counter.remote()) == 1

    again = Counter.options(name="some_name", get_if_exists=True).remote()
    assert rigd.get(again.get_counter.remote()) == 1
    with pytest.raises(ValueError, match="no_such_name"):
        rigd.get_actor("no_such_name")


def test_kill_ends_the_actor_and_later_calls_raise_rigds_actor_died_error() -> None:
    counter = Counter.remote()
    assert rigd.get(counter.increment.remote()) == 1

    rigd.kill(counter)

    # Ray's kill is asynchronous: a call may still be answered, until it is not.
    wait_until(lambda: died(counter.increment.remote), timeout=30, what="ActorDiedError")


def test_exit_actor_inside_a_method_ends_the_actor() -> None:
    @rigd.remote
    class Actor:
        def exit(self):
            rigd.actor.exit_actor()

        def ping(self):
            return "pong"

    actor = Actor.remote()
    assert rigd.get(actor.ping.remote()) == "pong"

    actor.exit.remote()

    wait_until(lambda: died(actor.ping.remote), timeout=30, what="ActorDiedError")


@rigd.remote
class FileProcessorActor:
    def __init__(self):
        self.temp_file = tempfile.NamedTemporaryFile(delete=False)  # noqa: SIM115
        self.temp_file.write(b"processing data")
        self.temp_file.flush()

    def __rigd_shutdown__(self):
        if hasattr(self, "temp_file"):
            self.temp_file.close()
            os.unlink(self.temp_file.name)

    def path(self):
        return self.temp_file.name


def test_shutdown_hook_runs_on_rigd_terminate() -> None:
    actor = FileProcessorActor.remote()
    path = rigd.get(actor.path.remote())
    assert os.path.exists(path)

    actor.__rigd_terminate__.remote()

    wait_until(lambda: not os.path.exists(path), timeout=30, what="__rigd_shutdown__ to run")
    wait_until(lambda: died(actor.path.remote), timeout=30, what="ActorDiedError")


def test_task_execution_order_from_one_submitter(capsys: pytest.CaptureFixture[str]) -> None:
    counter = Counter.remote()
    value0 = counter.increment.remote()
    value1 = counter.increment.remote()

    print(rigd.get(value0))
    print(rigd.get(value1))

    assert capsys.readouterr().out == "1\n2\n"


def test_rays_errors_arrive_as_rigds() -> None:
    counter = Counter.remote()
    # A method's exception: rigd's TaskError, and still the original class.
    with pytest.raises(rigd.exceptions.TaskError, match="no such frame") as info:
        rigd.get(counter.fail.remote())
    assert isinstance(info.value, ValueError)
    # Named as on one machine: the method, and no terminal colour codes.
    assert str(info.value).startswith("ValueError raised in Counter.fail\n")
    assert "\x1b[" not in str(info.value)

    @rigd.remote
    def slow():
        time.sleep(30)

    ref = slow.remote()
    with pytest.raises(rigd.exceptions.GetTimeoutError):
        rigd.get(ref, timeout=0.1)
    rigd.cancel(ref, force=True)
    with pytest.raises((rigd.exceptions.TaskCancelledError, rigd.exceptions.WorkerCrashedError)):
        rigd.get(ref, timeout=30)


def test_put_wait_and_a_task_on_ray() -> None:
    @rigd.remote(num_returns=2)
    def split(values):
        return values[:1], values[1:]

    ref = rigd.put([1, 2, 3])
    first, rest = split.remote(ref)
    ready, not_ready = rigd.wait([first, rest], num_returns=2, timeout=30)
    assert (len(ready), not_ready) == (2, [])
    assert rigd.get([first, rest]) == [[1], [2, 3]]


def exported(kind: bytes) -> int:
    """How many functions (``b"RemoteFunction"``) or actor classes (``b"ActorClass"``)
    this job has exported to Ray's GCS (its function table; each export is a key)."""
    from ray._private.ray_constants import KV_NAMESPACE_FUNCTION_TABLE
    from ray.experimental.internal_kv import _internal_kv_list

    job = ray.get_runtime_context().get_job_id().encode()
    return len(_internal_kv_list(kind + b":" + job + b":", namespace=KV_NAMESPACE_FUNCTION_TABLE))


def test_a_function_is_exported_to_ray_once_however_often_and_with_whatever_options() -> None:
    def double(x):
        return 2 * x

    before = exported(b"RemoteFunction")
    refs = [rigd.remote(double).remote(1), rigd.remote(double).remote(2)]
    refs.append(rigd.remote(double).options(num_cpus=0.5, name="twice").remote(3))
    refs.append(rigd.remote(num_cpus=1)(double).remote(4))

    assert rigd.get(refs, timeout=60) == [2, 4, 6, 8]
    assert exported(b"RemoteFunction") == before + 1


def test_an_actor_class_is_exported_once_and_names_lifetimes_and_groups_still_apply() -> None:
    @rigd.remote
    class Tally:
        def __init__(self, start):
            self.value = start

        def add(self, n):
            self.value += n
            return self.value

    before = exported(b"ActorClass")
    plain = Tally.remote(1)
    named = Tally.options(name="tally", lifetime="detached", max_concurrency=2).remote(10)
    try:
        assert rigd.get([plain.add.remote(1), named.add.remote(1)], timeout=60) == [2, 11]
        found = rigd.get_actor("tally")
        assert rigd.get(found.add.remote(1), timeout=60) == 12
        # The GCS's actor table (Ray's state API would need the dashboard).
        entry = ray._private.state.actors(named._actor_id.hex())
        assert (entry["Name"], entry["IsDetached"]) == ("tally", True)
        assert exported(b"ActorClass") == before + 1

        # concurrency_groups, which Ray takes in ray.remote only: a class of its own.
        grouped = Tally.options(concurrency_groups={"io": 2}).remote(0)
        assert rigd.get(grouped.add.remote(5), timeout=60) == 5
        assert exported(b"ActorClass") == before + 2
    finally:
        rigd.kill(named)  # detached: it outlives this job otherwise


def test_what_ray_lacks_is_refused_with_the_reason() -> None:
    # A strategy needs a placement group object (on Ray: Ray's, from
    # rigd.util.placement_group, which calls Ray's), not a name.
    strategy = PlacementGroupSchedulingStrategy(placement_group="a rigd placement group")
    with pytest.raises(ValueError, match=r"needs the group rigd.util.placement_group\(\)"):
        Counter.options(scheduling_strategy=strategy).remote()
    with pytest.raises(RuntimeError, match="already called in this process"):
        rigd.init(address="ray")


# -- pipelines across the nodes ------------------------------------------------------------


def write(tmp_path: Path, camera: str) -> Path:
    path = tmp_path / "pipeline.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            name: two_pcs
            actors:
              - name: camera
                class: rigd.pipeline.SimulatedCamera
                options: {{{camera}}}
                node: node_a
              - name: rowsum
                class: tests.pipeline.actors.RowSum
                node: node_b
              - name: recorder
                class: rigd.pipeline.HDF5Recorder
                options: {{directory: "{tmp_path / "data"}", flush_interval: 0.1}}
                node: node_a
            links:
              - {{link: camera.frames -> rowsum.frames, slots: 16}}
              - {{link: camera.frames -> recorder.camera, slots: 16}}
              - {{link: rowsum.sums -> recorder.sums, slots: 16}}
            """
        )
    )
    return path


def read(path: str, stream: str) -> dict[str, Any]:
    with h5py.File(path, "r") as f:
        g = f[stream]
        return {
            "frame_id": g["frame_id"][:],
            "frames": g["frames"][:],
            "dropped": g["dropped"][:],
            "state": str(f.attrs["run_state"]),
            "failure": str(f.attrs.get("failure", "")),
            "hosts": json.loads(f.attrs["stream_hosts"]),
        }


def expected_sums(ids: np.ndarray) -> np.ndarray:
    # RowSum: the sum of the first row of each counter frame (24 pixels of id % 65536).
    return ((ids.astype(np.int64) % 65536) * 24)[:, None]


def test_camera_on_a_processor_on_b_recorder_on_a_records_every_frame(tmp_path: Path) -> None:
    pipeline = ClusterPipeline(
        write(tmp_path, f"shape: [16, 24], fps: 500, n_frames: 1000, {COUNTER_GENERATOR}")
    )
    pipeline.start()
    try:
        assert pipeline.wait(90), "the run did not end across the cluster"
    finally:
        report = pipeline.stop()
    assert report.state == "stopped", report.failure
    (file,) = report.files
    camera, sums = read(file, "camera"), read(file, "sums")
    np.testing.assert_array_equal(camera["frame_id"], np.arange(1000))
    np.testing.assert_array_equal(sums["frame_id"], np.arange(1000))
    np.testing.assert_array_equal(sums["frames"], expected_sums(sums["frame_id"]))
    assert len(camera["dropped"]) == len(sums["dropped"]) == 0
    assert camera["state"] == "complete"
    # Each stream says where it came from (the local cluster's nodes share a host).
    assert set(camera["hosts"]) == {"camera", "sums"}


def test_reprocess_runs_one_ray_task_per_file_and_a_bad_file_is_a_row(
    tmp_path: Path, cluster: Any
) -> None:
    from rigd.service._reprocess import reprocess
    from rigd.storage import RunWriter, StreamSpec

    frames = np.random.default_rng(3).integers(0, 4000, (60, 16, 24), dtype=np.uint16)
    good = []
    for k in range(2):
        path = tmp_path / f"run{k}.h5"
        spec = StreamSpec("camera", (16, 24), np.dtype(np.uint16))
        with RunWriter(path, [spec], run_id=path.stem) as writer:
            for i, frame in enumerate(frames):
                writer.write("camera", frame, i, 1_700_000_000_000_000_000 + i)
        good.append(str(path))
    (tmp_path / "broken.h5").write_text("not a run file")
    pipeline = write(tmp_path, "shape: [16, 24]")
    results = reprocess(
        pipeline,
        [good[0], str(tmp_path / "broken.h5"), good[1]],
        tmp_path / "out",
        address=f"ray:{cluster.address}",
    )
    assert [r.state for r in results] == ["done", "failed", "done"]
    for result in (results[0], results[2]):
        assert result.output is not None
        with h5py.File(result.output, "r") as f:
            np.testing.assert_array_equal(f["camera/frames"][:], frames)
            expected = frames[:, 0, :].sum(axis=1, dtype=np.int64)[:, None]
            np.testing.assert_array_equal(f["sums/frames"][:], expected)
    assert ray.is_initialized()  # the module's connection is left as it was


def test_rigd_run_with_an_address_runs_the_pipeline_across_the_nodes(
    tmp_path: Path, cluster: Any
) -> None:
    path = write(tmp_path, f"shape: [16, 24], fps: 500, n_frames: 300, {COUNTER_GENERATOR}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    done = subprocess.run(
        [
            *(sys.executable, "-m", "rigd", "run", "--address", f"ray:{cluster.address}"),
            *("--meta", "subject_id=M12", "--meta", "age=41", str(path)),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
        cwd=tmp_path,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert ": stopped" in done.stdout, done.stdout
    (file,) = [line.split("file: ", 1)[1] for line in done.stdout.splitlines() if "file: " in line]
    camera = read(file, "camera")
    np.testing.assert_array_equal(camera["frame_id"], np.arange(300))
    assert camera["state"] == "complete"
    with h5py.File(file, "r") as f:  # --meta reaches the run file, typed as for one machine
        assert (f.attrs["subject_id"], int(f.attrs["age"])) == ("M12", 41)


def test_rigd_run_with_an_address_refuses_a_pipeline_file_that_does_not_exist(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rigd", "run", "--address", "ray:127.0.0.1:1", "missing.yaml"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )

    assert done.returncode == 2
    assert "no pipeline file missing.yaml" in done.stderr


def write_two_recorders(
    tmp_path: Path, rec_b_directory: Path | None = None, rec_b_template: str | None = None
) -> Path:
    """camera (A) -> rowsum (B); a recorder on each node: a file made on each."""
    path = tmp_path / "two_recorders.yaml"
    camera = f"shape: [16, 24], fps: 300, {COUNTER_GENERATOR}"
    template = f', template: "{rec_b_template}"' if rec_b_template else ""
    path.write_text(
        textwrap.dedent(
            f"""
            name: two_recorders
            actors:
              - {{name: camera, class: rigd.pipeline.SimulatedCamera, node: node_a,
                  options: {{{camera}}}}}
              - {{name: rowsum, class: tests.pipeline.actors.RowSum, node: node_b}}
              - {{name: recorder, class: rigd.pipeline.HDF5Recorder, node: node_a,
                  options: {{directory: "{tmp_path / "a"}", flush_interval: 0.1}}}}
              - {{name: rec_b, class: rigd.pipeline.HDF5Recorder, node: node_b,
                  options: {{directory: "{rec_b_directory or tmp_path / "b"}",
                             flush_interval: 0.1{template}}}}}
            links:
              - {{link: camera.frames -> rowsum.frames, slots: 16}}
              - {{link: camera.frames -> recorder.camera, slots: 16}}
              - {{link: rowsum.sums -> recorder.sums, slots: 16}}
              - {{link: rowsum.sums -> rec_b.sums, slots: 16}}
            """
        )
    )
    return path


def _sealed(directory: Path) -> list[str]:
    """The run states of the run files in ``directory``; no .reserve may be left."""
    assert not list(directory.glob(".*.reserve")), sorted(directory.iterdir())
    states = []
    for file in sorted(directory.glob("*.h5")):
        with h5py.File(file, "r") as f:
            states.append(str(f.attrs["run_state"]))
    return states


def _no_rings_of(pipeline_name: str) -> bool:
    return not [p for p in os.listdir("/dev/shm") if f"-ring-{pipeline_name}-" in p]


def test_sigterm_stops_a_cluster_run_cleanly_and_seals_every_nodes_file(
    tmp_path: Path, cluster: Any
) -> None:
    # As `timeout 120 rigd run --address ...` ends it: Ray's driver handler died at once.
    path = write_two_recorders(tmp_path)
    address = f"ray:{cluster.address}"
    run = subprocess.Popen(
        [sys.executable, "-m", "rigd", "run", "--address", address, str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    try:
        wait_until(
            lambda: [_recorded(f, "sums") >= 20 for f in _files(tmp_path)] == [True, True],
            timeout=60,
            what="frames recorded on both nodes",
        )
        run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 130, (out, err[-2000:])
    assert "SIGTERM received" not in err
    assert ": stopped" in out, out
    assert _sealed(tmp_path / "a") == _sealed(tmp_path / "b") == ["complete"]
    assert _no_rings_of("two_recorders")


def _files(tmp_path: Path) -> list[Path]:
    files = [*(tmp_path / "a").glob("*.h5"), *(tmp_path / "b").glob("*.h5")]
    return files if len(files) == 2 else []


def test_a_node_that_fails_to_start_aborts_the_run_and_the_other_nodes_file_is_sealed(
    tmp_path: Path,
) -> None:
    # What planning cannot know: node_b's run file is there already (made after the
    # check, as by another run); a recorder never records into another run's file.
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "taken.h5").write_text("another run's file")
    pipeline = ClusterPipeline(
        write_two_recorders(tmp_path, tmp_path / "b", rec_b_template="taken.h5")
    )

    with pytest.raises(rigd.exceptions.PipelineFailedError) as failed:
        pipeline.start()

    message = str(failed.value)
    assert message.startswith("node node_b: FileExistsError"), message
    assert "Traceback" not in message
    assert "\n" not in message
    (file,) = (tmp_path / "a").glob("*.h5")  # made on node_a, whose part had loaded
    assert f"the files made are sealed aborted: {file}" in message
    assert _sealed(tmp_path / "a") == ["aborted"]
    wait_until(lambda: _no_rings_of("two_recorders"), timeout=10, what="the rings removed")


def test_bridge_ports_for_two_nodes_on_one_host_are_chosen_together(tmp_path: Path) -> None:
    # Each node picked the range's one port for itself; the second bridge's bind failed.
    with socket.socket() as s:
        s.bind(("0.0.0.0", 0))
        port = s.getsockname()[1]
    pipeline = ClusterPipeline(write_two_recorders(tmp_path), port_range=(port, port))

    with pytest.raises(ValueError, match=rf"need 2 free tcp ports in {port}-{port} .*1 is free"):
        pipeline.start()

    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_a_live_actor_holding_a_nodes_resource_is_named_when_the_run_cannot_be_placed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rigd.pipeline import _cluster

    monkeypatch.setattr(_cluster, "_PLACE_TIMEOUT_S", 1.0)
    holder = Counter.options(resources={"node_b": 4}).remote()  # all of node_b's
    try:
        rigd.get(holder.increment.remote(), timeout=30)
        with pytest.raises(
            rigd.exceptions.ResourceUnavailableError, match=r"\['node_b'\] all held"
        ):
            ClusterPipeline(write_two_recorders(tmp_path)).start()
    finally:
        rigd.kill(holder)


@rigd.remote
class HungSupervisor:
    """A node supervisor whose ``wait`` never answers (as one stopped, or deadlocked)."""

    def wait(self, timeout: float) -> bool:
        return threading.Event().wait()


def test_a_node_supervisor_that_does_not_answer_or_died_is_named_lost_with_what_happened() -> None:
    from rigd.pipeline._cluster_watch import Lost, poll_nodes

    hung, dead = HungSupervisor.remote(), HungSupervisor.remote()
    rigd.kill(dead)
    try:
        assert poll_nodes({"node_b": hung}, answer_s=1.0) == Lost(
            "node_b",
            "its node supervisor did not answer within 1 s (hung, or its node unreachable); "
            "it is killed",
        )
        answer = poll_nodes({"node_a": dead}, answer_s=30.0)
    finally:
        rigd.kill(hung)
    assert isinstance(answer, Lost), answer
    assert (answer.node, answer.why[:29]) == ("node_a", "its node supervisor died (The"), answer


def _node_supervisors(cluster: Any) -> dict[str, int]:
    """The live node supervisors' pids, by the node they run on: the ``ray::NodeSupervisor``
    workers whose parent is that node's raylet (this cluster's only; Ray's state API would
    ask the dashboard on port 8265, which may be another cluster's on a shared machine)."""
    raylets = {
        n.all_processes["raylet"][0].process.pid: "node_a" if n.head else "node_b"
        for n in cluster.list_all_nodes()
    }
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                after = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            continue
        if (
            after[0] != "Z"
            and int(after[1]) in raylets
            and command.startswith(b"ray::NodeSupervisor")
        ):
            found[raylets[int(after[1])]] = int(entry)
    return found


def test_the_far_nodes_supervisor_killed_mid_run_fails_the_run_at_once_and_the_driver_exits(
    tmp_path: Path, cluster: Any
) -> None:
    # As a user found it: `kill -9` of the far node's ray::NodeSupervisor left the driver
    # flooding the live node with calls, deaf to SIGTERM, and the file unsealed.
    path = write(tmp_path, f"shape: [16, 24], fps: 300, {COUNTER_GENERATOR}")
    run = subprocess.Popen(
        [
            *(sys.executable, "-m", "rigd", "run", "--address", f"ray:{cluster.address}"),
            *("--run-id", "nl1", str(path)),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    try:
        wait_until(lambda: any((tmp_path / "data").glob("*.h5")), timeout=60, what="the file")
        (file,) = (tmp_path / "data").glob("*.h5")
        wait_until(lambda: _recorded(file, "sums") >= 50, timeout=60, what="50 sums recorded")
        wait_until(
            lambda: set(_node_supervisors(cluster)) == {"node_a", "node_b"},
            timeout=30,
            what="a node supervisor on each node in Ray's state API",
        )
        os.kill(_node_supervisors(cluster)["node_b"], signal.SIGKILL)
        killed = time.monotonic()
        out, err = run.communicate(timeout=60)  # ends by itself: no signal sent
        took = time.monotonic() - killed
    finally:
        if run.poll() is None:
            run.kill()
            run.communicate()
    assert run.returncode == 1, (out, err[-2000:])
    assert "run nl1: failed" in out, out
    assert "failure: node node_b lost: its node supervisor died" in out, out
    assert took < 30, f"the run took {took:.1f} s to fail"
    assert "Exception in thread" not in err, err[-2000:]
    assert "pending submission" not in err, err[-2000:]
    camera = read(str(file), "camera")
    # node_a's part stopped, its file sealed once: failed, with the run's failure.
    assert camera["state"] == "failed"
    assert "node node_b lost: its node supervisor died" in camera["failure"], camera["failure"]
    reasons = [r["reason"].decode() for r in camera["dropped"]]
    assert any("node node_b lost" in r for r in reasons), reasons
    np.testing.assert_array_equal(camera["frame_id"], np.arange(len(camera["frame_id"])))
    # Nothing of the run is left: node_a's rings removed by its stop, node_b's by its
    # orphaned workers; no node supervisor lives on.
    wait_until(lambda: _no_rings_of("two_pcs"), timeout=10, what="both nodes' rings removed")
    wait_until(lambda: not _node_supervisors(cluster), timeout=30, what="supervisors ended")


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def test_a_ctrl_c_while_a_hung_node_stops_forces_and_the_driver_exits_at_once(
    tmp_path: Path, cluster: Any
) -> None:
    # node_b's supervisor stopped (SIGSTOP): a clean stop would wait for it, for minutes.
    path = write(tmp_path, f"shape: [16, 24], fps: 300, {COUNTER_GENERATOR}")
    run = subprocess.Popen(
        [sys.executable, "-m", "rigd", "run", "--address", f"ray:{cluster.address}", str(path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
    )
    lines: list[str] = []
    assert run.stderr is not None
    reader = threading.Thread(target=lambda: lines.extend(run.stderr), daemon=True)  # type: ignore[arg-type]
    reader.start()
    frozen = 0
    try:
        wait_until(lambda: any((tmp_path / "data").glob("*.h5")), timeout=60, what="the file")
        (file,) = (tmp_path / "data").glob("*.h5")
        wait_until(lambda: _recorded(file, "sums") >= 20, timeout=60, what="20 sums recorded")
        wait_until(lambda: len(_node_supervisors(cluster)) == 2, timeout=30, what="both")
        frozen = _node_supervisors(cluster)["node_b"]
        os.kill(frozen, signal.SIGSTOP)
        wait_until(lambda: _state(frozen) == "T", timeout=10, what="node_b's supervisor stopped")
        run.send_signal(signal.SIGTERM)
        wait_until(
            lambda: any("Ctrl-C again forces" in line for line in lines),
            timeout=30,
            what="the stop said",
        )
        run.send_signal(signal.SIGINT)
        forced = time.monotonic()
        run.wait(timeout=60)  # stderr is the reader's alone
        took = time.monotonic() - forced
        assert run.stdout is not None
        out = run.stdout.read()
    finally:
        if frozen:
            with contextlib.suppress(ProcessLookupError):
                os.kill(frozen, signal.SIGCONT)
        if run.poll() is None:
            run.kill()
            run.communicate()
    reader.join(timeout=10)
    run.stdout.close()  # type: ignore[union-attr]
    run.stderr.close()
    err = "".join(lines)
    assert run.returncode == 130, (out, err[-2000:])
    assert "forced: every node's supervisor killed" in err, (out, err[-2000:])
    assert took < 20, f"the forced stop took {took:.1f} s"
    wait_until(lambda: not _node_supervisors(cluster), timeout=30, what="supervisors ended")
    # A forced stop leaves its files for `rigd recover`, and its rings to whoever
    # comes first: the killed supervisors' workers as they end, or the next rigd
    # session's sweep (`remove_stale_rings`). None may be held by a live process.
    remove_stale_rings()
    assert _no_rings_of("two_pcs")


def test_the_processors_node_removed_mid_run_fails_the_run_and_seals_the_file(
    tmp_path: Path, cluster: Any
) -> None:
    pipeline = ClusterPipeline(write(tmp_path, f"shape: [16, 24], fps: 300, {COUNTER_GENERATOR}"))
    pipeline.start()
    try:
        wait_until(
            lambda: any((tmp_path / "data").glob("*.h5")),
            timeout=30,
            what="the run file",
        )
        (file,) = (tmp_path / "data").glob("*.h5")
        wait_until(lambda: _recorded(file, "sums") >= 100, timeout=60, what="100 sums recorded")
        (node_b,) = [n for n in cluster.list_all_nodes() if not n.head]
        cluster.remove_node(node_b)
        wait_until(lambda: pipeline.state == "failed", timeout=60, what="the run to fail")
    finally:
        report = pipeline.stop()
    assert report.state == "failed"
    assert "node node_b lost" in (report.failure or "")
    camera = read(str(file), "camera")
    assert camera["state"] == "failed"  # sealed, as the run ended
    assert camera["failure"] == report.failure
    reasons = [r["reason"].decode() for r in camera["dropped"]]
    assert any("node node_b lost" in r for r in reasons), reasons
    np.testing.assert_array_equal(camera["frame_id"], np.arange(len(camera["frame_id"])))


def _recorded(path: Path, stream: str) -> int:
    try:
        with h5py.File(path, "r", swmr=True) as f:
            return len(f[stream]["frame_id"])
    except (OSError, KeyError):
        return 0
