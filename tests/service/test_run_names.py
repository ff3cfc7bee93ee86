"""``rigd run PIPELINE`` takes what ``rigd load`` takes: a file here first, else a
pipeline's name (the bundled ``demo``), resolved by the same function."""

from __future__ import annotations

import signal
from pathlib import Path

from rigd.config import BUNDLED_PIPELINES
from rigd.storage import inspect_run
from tests.service.daemon import rigd_cli_in
from tests.service.test_run import no_rings_of
from tests.service.test_run_stops import Run, only_file


def test_rigd_run_runs_the_bundled_demo_by_name_as_rigd_load_loads_it(tmp_path: Path) -> None:
    # Was: "rigd run: no pipeline file demo", while `rigd load demo` loaded it.
    run = Run(tmp_path, "--run-id", "by-name", "demo")
    run.wait_for("rigd run: running")
    run.proc.send_signal(signal.SIGINT)  # a clean stop: the demo would run 10 s
    status, out, err = run.end()
    assert status == 130, err
    assert f"starting pipeline 'demo' from {BUNDLED_PIPELINES / 'demo.yaml'}" in err
    assert f"no file demo here: running the pipeline {BUNDLED_PIPELINES / 'demo.yaml'}" in err
    assert "run by-name: stopped after" in out, err
    summary = inspect_run(only_file(tmp_path))
    assert (summary.run_id, summary.run_state) == ("by-name", "complete")
    assert summary.pipeline == (BUNDLED_PIPELINES / "demo.yaml").read_text()
    assert {s.name for s in summary.streams} == {"camera", "stats"}
    assert no_rings_of(run.pid)


def test_a_file_here_comes_before_a_bundled_name_and_neither_is_a_clear_error(
    tmp_path: Path,
) -> None:
    # As `rigd load`: a file of that name here is the pipeline (this one is wrong,
    # so nothing starts, and its own problem is named).
    (tmp_path / "demo").write_text("actors:\n  - {name: camera, class: rigd.pipeline.Nope}\n")
    done = rigd_cli_in(tmp_path, "run", "demo", timeout=60)
    assert done.returncode == 2, done.stderr
    assert "demo, line 2, actors[0].class" in done.stderr
    assert "bundled" not in done.stderr

    for missing in ("nosuch", "./nosuch.yaml"):
        done = rigd_cli_in(tmp_path, "run", missing, timeout=60)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.splitlines()
        assert f"no pipeline file {missing} here" in line
        assert "rigd's bundled pipelines (demo)" in line
        assert "give the path of a pipeline YAML file, or the name of a bundled one" in line
        assert line.endswith("nothing was started")
    (tmp_path / "rigs").mkdir()
    (tmp_path / "rigs" / "two.yaml").write_text("")
    done = rigd_cli_in(tmp_path, "run", "rigs", timeout=60)
    assert done.returncode == 2, done.stderr
    assert "rigs is a directory, not a pipeline file; give one of its YAML files (two.yaml)" in (
        done.stderr
    )
    assert not (tmp_path / "rigd-data").exists()
