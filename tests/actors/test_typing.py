"""Ray's typing guide with rigd: the typed example checks, and a wrong call is reported."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import textwrap

EXAMPLE = textwrap.dedent("""
    import rigd
    from rigd.actor import ActorClass, ActorProxy

    class Counter:
        def __init__(self):
            self.value = 0

        @rigd.method
        def increment(self) -> int:
            self.value += 1
            return self.value

    CounterActor: ActorClass[Counter] = rigd.remote(Counter)
    counter: ActorProxy[Counter] = CounterActor.remote()

    # Type checkers and IDEs will now provide type hints for remote methods
    obj_ref: rigd.ObjectRef[int] = counter.increment.remote()
    print(rigd.get(obj_ref))
""")

WRONG = EXAMPLE + textwrap.dedent("""
    wrong_type: rigd.ObjectRef[str] = counter.increment.remote()
    wrong_args = counter.increment.remote(5)
""")


def _mypy(tmp_path: pathlib.Path, source: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "example.py"
    path.write_text(source)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--no-error-summary",
            "--cache-dir",
            str(tmp_path / "cache"),
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,  # not this project's strict mypy settings: a user's defaults
    )


def test_the_typed_example_type_checks_and_runs(tmp_path: pathlib.Path) -> None:
    checked = _mypy(tmp_path, EXAMPLE)
    ran = subprocess.run(
        [sys.executable, "-c", EXAMPLE], capture_output=True, text=True, timeout=60, check=False
    )

    assert checked.returncode == 0, checked.stdout
    assert ran.stdout == "1\n", ran.stderr


def test_a_wrong_remote_call_is_reported_by_mypy(tmp_path: pathlib.Path) -> None:
    checked = _mypy(tmp_path, WRONG)

    assert checked.returncode == 1
    assert "example.py:21: error: Incompatible types in assignment" in checked.stdout
    assert 'variable has type "ObjectRef[str]"' in checked.stdout
    assert 'Too many arguments for "remote"' in checked.stdout
