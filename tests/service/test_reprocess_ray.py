"""``rigd reprocess --address`` on a real Ray cluster: an interrupt cancels the tasks and
each marks its file failed; a pipeline no node can hold is refused at once; a worker
killed mid-file is a row naming its unsealed output and ``rigd recover``; one killed
before it made an output is a row saying it made none.

One single-node cluster for the module (this process connected to it), started as a
cluster started in the background is (``nohup``, ``&`` in a script): SIGINT ignored, so
its workers ignore it too, and SIGINT is what Ray's cancel of a running task simulates
in the worker.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import h5py
import pytest

import rigd
from rigd.service._reprocess import reprocess
from rigd.storage import check_sealed
from tests.helpers import wait_until
from tests.service.stall_actors import PLAN_STALL_PIPELINE, STALL_PIPELINE
from tests.service.test_reprocess_stops import rings_of, write_run

ROOT = Path(__file__).resolve().parents[2]

pytest.importorskip("ray", reason="Ray is the test extra's (pip install 'rigd[cluster]')")
#: Ray's own unclosed probe socket (see ``_collect_rays_sockets``), whenever it is collected.
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings(
        "ignore:Exception ignored in. <socket.socket:pytest.PytestUnraisableExceptionWarning"
    ),
]


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    from ray.cluster_utils import Cluster

    before = os.environ.get("PYTHONPATH")  # the workers import the tests' actors
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), before or "") if p)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    finally:
        signal.signal(signal.SIGINT, previous)
    try:
        rigd.shutdown()  # no one-machine session may be left from other modules
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            rigd.init(address=f"ray:{cluster.address}")  # reprocess uses it, as it is
        _collect_rays_sockets()
        yield f"ray:{cluster.address}"
    finally:
        rigd.shutdown()
        cluster.shutdown()
        _collect_rays_sockets()
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


@pytest.fixture(autouse=True)
def _no_leftovers() -> Iterator[None]:
    # The session is the module's (the connection to the cluster), not each test's;
    # each test checks the rings of the processes it stopped or killed.
    yield
    _collect_rays_sockets()


def _collect_rays_sockets() -> None:
    """Ray's port probes leave sockets in reference cycles (ray/_private/services.py):
    collected here, their ResourceWarning ignored, not in a later test's phase."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def stall_pipeline(tmp_path: Path, extra: str = "") -> tuple[Path, Path]:
    marker = tmp_path / "stalled"
    marker.mkdir()
    pipeline = tmp_path / "stall.yaml"
    text = STALL_PIPELINE.format(marker=marker)
    pipeline.write_text(text.replace("    options: {marker", f"{extra}    options: {{marker"))
    return pipeline, marker


def test_sigterm_cancels_the_ray_tasks_and_each_marks_its_file_failed(
    tmp_path: Path, address: str
) -> None:
    # Was: the driver died at once (Ray's SIGTERM handler; a Ctrl-C: a raw traceback),
    # its tasks killed with it: files left "recording" with their .reserve.
    pipeline, marker = stall_pipeline(tmp_path)
    for name in ("one", "two"):
        write_run(tmp_path / f"{name}.h5", 1000, 20)  # each hangs at its first frame
    files = [str(tmp_path / "one.h5"), str(tmp_path / "two.h5")]
    with subprocess.Popen(
        [
            *(sys.executable, "-m", "rigd", "reprocess", str(pipeline), *files),
            *("--address", address, "--out", str(tmp_path / "out")),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as job:
        wait_until(lambda: len(list(marker.iterdir())) == 2, timeout=90, what="both tasks")
        workers = [int(p.name) for p in marker.iterdir()]
        job.send_signal(signal.SIGTERM)
        out, err = job.communicate(timeout=90)

    assert job.returncode == 130, err[-3000:]
    assert "stopped by SIGTERM" in err
    assert "0 done, 0 failed, 2 interrupted" in out
    for name in ("one", "two"):
        (row,) = [line for line in out.splitlines() if line.startswith(f"{name}.h5")]
        assert "interrupted (its Ray task cancelled); what it replayed is kept in" in row
        path = tmp_path / "out" / f"{name}-reprocessed.h5"
        check_sealed(path)  # raises if not
        with h5py.File(path, "r") as f:
            assert f.attrs["run_state"] == "failed"
            assert "KeyboardInterrupt" in f.attrs["failure"]
        assert not (tmp_path / "out" / f".{path.name}.reserve").exists()
    for pid in workers:
        assert rings_of(pid) == []


def test_a_pipeline_no_node_can_hold_is_refused_before_any_task_is_submitted(
    tmp_path: Path, address: str
) -> None:
    # Was: each task stayed pending for ever.
    gpu, _ = stall_pipeline(tmp_path, "    num_gpus: 1\n")
    cpu8 = tmp_path / "cpu8.yaml"
    cpu8.write_text(gpu.read_text().replace("num_gpus: 1", "num_cpus: 8"))
    write_run(tmp_path / "run.h5", 0, 5)

    refused = subprocess.run(
        [
            *(sys.executable, "-m", "rigd", "reprocess", str(gpu), str(tmp_path / "run.h5")),
            *("--address", address, "--out", str(tmp_path / "out")),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=90,
        check=False,
    )
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "each file's Ray task needs 1 CPUs and 1 GPUs" in refused.stderr
    assert ": 2 CPUs, 0 GPUs)" in refused.stderr  # the node's own
    assert "nothing was submitted" in refused.stderr
    assert "add a node that has them" in refused.stderr
    assert not (tmp_path / "out").exists()  # was: made, and left empty
    with pytest.raises(ValueError, match=r"needs 8 CPUs and 0 GPUs .* 2 CPUs, 0 GPUs\)"):
        reprocess(cpu8, [str(tmp_path / "run.h5")], tmp_path / "out", address=address)
    assert not (tmp_path / "out").exists()


def test_a_killed_worker_is_a_row_naming_its_unsealed_output_and_rigd_recover(
    tmp_path: Path, address: str
) -> None:
    pipeline, marker = stall_pipeline(tmp_path)
    write_run(tmp_path / "hangs.h5", 1000, 20)
    write_run(tmp_path / "fine.h5", 0, 5)
    killed: list[int] = []

    def kill_the_worker() -> None:  # kill -9 of the ray::replay_file worker, once it hangs
        wait_until(lambda: any(marker.iterdir()), timeout=90, what="the task to hang")
        killed.append(int(next(marker.iterdir()).name))
        killed.append(len(rings_of(killed[0])))
        os.kill(killed[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    try:
        (crashed,) = reprocess(
            pipeline, [str(tmp_path / "hangs.h5")], tmp_path / "out", address=address
        )
    finally:
        killer.join(timeout=120)
    output = tmp_path / "out" / "hangs-reprocessed.h5"

    assert crashed.state == "failed"
    assert "WorkerCrashedError" in (crashed.error or "")
    assert f"its output {output} is left unsealed (run_state: recording)" in (crashed.error or "")
    assert f"seal it with `rigd recover {output}`" in (crashed.error or "")
    with pytest.raises(ValueError, match="is not sealed"):
        check_sealed(output)
    pid, left = killed
    assert left, "the killed worker had no ring to leave"
    # The next task (another worker) removes the rings the killed one left.
    (done,) = reprocess(pipeline, [str(tmp_path / "fine.h5")], tmp_path / "out", address=address)
    assert done.state == "done", done.error
    assert rings_of(pid) == []


def test_a_worker_killed_before_its_output_is_a_row_saying_it_made_none(
    tmp_path: Path, address: str
) -> None:
    # Was: "its output .../r2-reprocessed.h5 ... is left unsealed ... rigd recover", of
    # a file that was never made (the worker died while its replay was planned).
    marker = tmp_path / "stalled"
    marker.mkdir()
    pipeline = tmp_path / "plan-stall.yaml"
    pipeline.write_text(PLAN_STALL_PIPELINE.format(marker=marker, driver=os.getpid()))
    write_run(tmp_path / "r2.h5", 0, 5)

    def kill_the_worker() -> None:  # kill -9 of the ray::replay_file worker, while it plans
        wait_until(lambda: any(marker.iterdir()), timeout=90, what="the task to hang")
        os.kill(int(next(marker.iterdir()).name), signal.SIGKILL)

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    try:
        (crashed,) = reprocess(
            pipeline, [str(tmp_path / "r2.h5")], tmp_path / "out", address=address
        )
    finally:
        killer.join(timeout=120)
    output = tmp_path / "out" / "r2-reprocessed.h5"

    assert not output.exists()
    assert crashed.state == "failed"
    assert "WorkerCrashedError" in (crashed.error or "")
    assert f"it made no output ({output} was not created)" in (crashed.error or "")
    assert "unsealed" not in (crashed.error or "")
    assert "rigd recover" not in (crashed.error or "")
    assert crashed.frames == 0
