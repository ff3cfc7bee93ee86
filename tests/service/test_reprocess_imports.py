"""What a ``rigd reprocess`` job imports: a Ray worker pays for each module, per worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from tests.service.test_reprocess import PIPELINE, run_file

ROOT = Path(__file__).resolve().parents[2]

#: Modules a replay on the CPU has no use for: the GPU package (only an actor
#: with a GPU pins its slots), improv's reader (the file is rigd's), the
#: daemon's service config, the daemon itself.
NOT_NEEDED = ("rigd.gpu", "rigd.config._improv", "rigd.config._service_file", "rigd.service")

JOB = """
import sys
from rigd.pipeline import replay_file

result = replay_file(sys.argv[1], sys.argv[2], sys.argv[3])
print(result["state"], result["error"])
print(" ".join(m for m in sys.argv[4:] if m in sys.modules))
"""


def run_job(code: str, *args: str) -> list[str]:
    """The lines a job (``code``, in a fresh Python) prints: its state, and the modules."""
    job = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return job.stdout.splitlines()


def test_a_replay_job_imports_neither_the_gpu_package_nor_improvs_reader_nor_the_service(
    tmp_path: Path,
) -> None:
    run_file(tmp_path / "run.h5", 1, 20)

    args = [PIPELINE, str(tmp_path / "run.h5"), str(tmp_path / "out"), *NOT_NEEDED]
    state, imported = run_job(JOB, *args)
    assert state == "done None"
    assert imported == ""
    assert (tmp_path / "out" / "run-reprocessed.h5").exists()


#: A job given the pipeline loaded, as ``rigd reprocess`` hands it to each Ray task (pickled).
LOADED_JOB = """
import pickle, sys
from pathlib import Path

import h5py
import pytest

loaded = pickle.loads(Path(sys.argv[1]).read_bytes())
from rigd.pipeline import replay_file

result = replay_file(loaded, sys.argv[2], sys.argv[3])
print(result["state"], result["error"])
print(" ".join(m for m in ("pydantic", "pydantic_core") if m in sys.modules))
"""


def test_a_replay_job_given_the_loaded_pipeline_never_imports_pydantic(tmp_path: Path) -> None:
    """A Ray worker has no pydantic: importing it and building the pipeline file's
    validators cost about 65 ms of each worker's start. The driver validated the
    file; its tasks take it loaded."""
    import pickle

    from rigd.config import load_pipeline

    run_file(tmp_path / "run.h5", 1, 20)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    blob = tmp_path / "loaded.pickle"
    blob.write_bytes(pickle.dumps(load_pipeline(pipeline)))

    state, imported = run_job(LOADED_JOB, str(blob), str(tmp_path / "run.h5"), str(tmp_path))
    assert state == "done None"
    assert imported == ""
    with h5py.File(tmp_path / "run-reprocessed.h5", "r") as f:
        assert f.attrs["run_state"] == "complete"


#: A Ray task's job as ``rigd reprocess`` sends it (``in_task``), counting how often
#: planning reads the installed distributions' entry points.
CHECKED_JOB = """
import pickle, sys
from pathlib import Path

import rigd.pipeline._plan_classes as classes

reads = []
real = classes.entry_points


def counted(*args, **kwargs):
    reads.append(1)
    return real(*args, **kwargs)


classes.entry_points = counted
loaded = pickle.loads(Path(sys.argv[1]).read_bytes())
from rigd.pipeline import replay_file

result = replay_file(loaded, sys.argv[2], sys.argv[3], True, checked_modules=sys.argv[4:])
print(result["state"], result["error"])
print(len(reads))
"""


def test_a_ray_tasks_replay_given_the_drivers_checked_modules_reads_no_entry_points(
    tmp_path: Path,
) -> None:
    """Reading every installed distribution's entry points (to refuse a console
    script's module) costs each new Ray worker 10 ms or more; the driver's
    ``check_replay`` did it once and names the modules it checked."""
    import pickle

    from rigd.config import load_pipeline
    from rigd.pipeline import check_replay

    run_file(tmp_path / "run.h5", 1, 20)
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(PIPELINE)
    loaded = load_pipeline(pipeline)
    checked = check_replay(loaded)
    assert "tests.pipeline.actors" in checked
    blob = tmp_path / "loaded.pickle"
    blob.write_bytes(pickle.dumps(loaded))

    for out, given, reads in (("a", checked, "0"), ("b", (), "1")):
        args = [str(blob), str(tmp_path / "run.h5"), str(tmp_path / out), *given]
        assert run_job(CHECKED_JOB, *args) == ["done None", reads]


def test_checked_modules_that_are_programs_by_name_are_never_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rigd.pipeline._plan_classes import import_checked

    package = tmp_path / "rigdprog"
    package.mkdir()
    (package / "__init__.py").write_text("")
    marker = tmp_path / "ran"
    (package / "__main__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    import_checked(["rigdprog.__main__", "rigd.service._cli", "not a module", "rigdprog"])
    assert not marker.exists()
    assert "rigdprog.__main__" not in sys.modules
    assert "rigdprog" in sys.modules
