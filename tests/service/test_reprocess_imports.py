"""What a ``rigd reprocess`` job imports: a Ray worker pays for each module, per worker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_a_replay_job_imports_neither_the_gpu_package_nor_improvs_reader_nor_the_service(
    tmp_path: Path,
) -> None:
    run_file(tmp_path / "run.h5", 1, 20)

    args = [PIPELINE, str(tmp_path / "run.h5"), str(tmp_path / "out"), *NOT_NEEDED]
    job = subprocess.run(
        [sys.executable, "-c", JOB, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )

    state, imported = job.stdout.splitlines()
    assert state == "done None"
    assert imported == ""
    assert (tmp_path / "out" / "run-reprocessed.h5").exists()
