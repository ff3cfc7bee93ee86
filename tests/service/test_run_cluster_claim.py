"""``rigd run --address``: what it does on the driver before it joins the cluster.

The run id is claimed as a local ``rigd run`` claims it (``_run_start``), in
this driver's data directory: an id used before or in use is refused with the
local messages, exit 2, and the cluster is never joined. Before, both runs
went on the cluster (two files, one shared log) or the second died with a
Ray-prefixed FileExistsError. The pipeline file is planned here first: its
actor classes import from the current directory, and a file that cannot be
used is named, exit 2. No cluster is started: the address is a closed port,
so a run that got past the claim says so ("no Ray cluster").
"""

from __future__ import annotations

import io
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rigd.service._run_claim import claim_run_id
from rigd.service._run_cluster import run_on_cluster

TWO_PCS = """\
name: two_pcs
actors:
  - {name: camera, class: rigd.pipeline.SimulatedCamera, node: node_a,
     options: {shape: [8, 8], fps: 100, n_frames: 10}}
  - {name: slow, class: %s, node: node_b}
links:
  - {link: camera.frames -> slow.frames}
record: [camera.frames]
"""

MYACTORS = """\
from rigd import Actor


class Slow(Actor):
    input_names = ("frames",)

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0):
            pass
"""


@pytest.fixture
def address() -> Iterator[str]:
    """A Ray address where nothing listens (bound, not listening): joining it fails."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"ray://127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """``tmp_path`` as the current directory, with ``myactors.py`` in it, and a
    ``sys.path`` without the current directory (as the ``rigd`` script has)."""
    (tmp_path / "myactors.py").write_text(MYACTORS)
    (tmp_path / "two_pcs.yaml").write_text(TWO_PCS % "myactors.Slow")
    monkeypatch.chdir(tmp_path)
    cwd = {"", os.getcwd(), str(tmp_path)}
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in cwd])
    yield tmp_path
    sys.modules.pop("myactors", None)


def cluster_run(*args: str, run_id: str | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = run_on_cluster(*args, run_id=run_id, out=out, err=err)  # type: ignore[arg-type]
    return status, out.getvalue(), err.getvalue()


def test_a_run_id_used_before_is_refused_before_the_cluster_is_joined(
    here: Path, address: str
) -> None:
    log = here / "rigd-data" / "cl1.log"
    log.parent.mkdir()
    log.write_text("the first run's lines\n")
    status, out, err = cluster_run("two_pcs.yaml", address, run_id="cl1")
    assert status == 2, err
    assert out == ""
    (line,) = err.splitlines()  # one line: the cluster was never joined
    assert line.startswith("rigd run: run id 'cl1' was used before here"), line
    assert "give another --run-id; nothing was started" in line
    assert log.read_text() == "the first run's lines\n"
    assert sorted(log.parent.iterdir()) == [log]


def test_a_run_id_in_use_is_refused_and_a_failed_join_gives_a_free_id_back(
    here: Path, address: str
) -> None:
    log = here / "rigd-data" / "cl1.log"
    held = claim_run_id(log, "cl1")  # a run under way (here: this process) holds it
    try:
        status, _, err = cluster_run("two_pcs.yaml", address, run_id="cl1")
        assert status == 2
        (line,) = err.splitlines()
        assert line.startswith("rigd run: run id 'cl1' is in use by another rigd run"), line
        assert "nothing was started" in line
    finally:
        held.release()
    # Given back, the id is claimed, then the join fails: the id is free again.
    status, _, err = cluster_run("two_pcs.yaml", address, run_id="cl2")
    assert status == 2
    assert f"no Ray cluster at {address}" in err, err
    assert sorted(log.parent.iterdir()) == [log]


def test_a_taken_automatic_run_id_gets_the_next_suffix_as_locally(here: Path, address: str) -> None:
    data = here / "rigd-data"
    data.mkdir()
    # This second and the next two taken: whichever second the run starts in.
    now = time.time()
    taken = {time.strftime("%Y%m%dT%H%M%S", time.localtime(now + d)) for d in range(3)}
    for run_id in taken:
        (data / f"{run_id}.log").write_text("x\n")
    status, _, err = cluster_run("two_pcs.yaml", address)
    assert status == 2
    first = err.splitlines()[0]
    assert "is taken here (a run of the same second); this run is '" in first, err
    assert first.endswith("-2'"), first
    assert f"no Ray cluster at {address}" in err
    # The join failed: nothing started, the -2 id given back; the others untouched.
    assert {p.name for p in data.iterdir()} == {f"{r}.log" for r in taken}


def test_actor_classes_import_from_the_current_directory(here: Path, address: str) -> None:
    status, _, err = cluster_run("two_pcs.yaml", address, run_id="mine")
    # Planned here (myactors.Slow imported from ./myactors.py), then the join failed.
    assert status == 2
    assert f"no Ray cluster at {address}" in err, err
    assert sys.modules["myactors"].__file__ == str(here / "myactors.py")


def test_a_pipeline_file_that_cannot_be_used_is_named_and_exits_2(here: Path, address: str) -> None:
    (here / "bad.yaml").write_text(TWO_PCS % "myactors.Absent")
    status, out, err = cluster_run("bad.yaml", address, run_id="bad")
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "rigd run: bad.yaml has 1 problem(s); nothing was started:", err
    assert lines[1].startswith("  bad.yaml, line 5"), err
    assert "myactors.Absent" in lines[1]
    assert "<cluster pipeline>" not in err
    assert "no Ray cluster" not in err  # the cluster was never joined
    assert not (here / "rigd-data").exists()


def test_a_cluster_pipelines_problems_name_its_file() -> None:
    from rigd._exceptions import PipelineFileError
    from rigd.pipeline._cluster import split_pipeline

    text = TWO_PCS % "myactors.Absent"
    with pytest.raises(PipelineFileError) as caught:
        split_pipeline(text, {"node_a": "10.0.0.1", "node_b": "10.0.0.2"}, name="two_pcs.yaml")
    assert str(caught.value).startswith("two_pcs.yaml, line 5"), caught.value
