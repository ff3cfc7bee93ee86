#!/usr/bin/env python3
"""How much of Ray's own actor test suite runs on rigd, by file (run by hand).

Ray's test files are not part of rigd: point this at a directory holding
them (from a checkout of https://github.com/ray-project/ray, its
``python/ray/tests/``). Each file runs in its own pytest process with a
``ray`` -> ``rigd`` name shim (``bench/ray_compat/ray``) and single-machine
fixtures (``bench/ray_compat/conftest.py``), and each test is counted:

- pass;
- out of scope: a cluster fixture, a Ray internal or cluster API (the shim
  raises ``OutOfScope`` naming it), a test of what is not Ray's API today
  (``NOT_RAYS_API`` in the conftest, by test name), or skipped by Ray's own
  file; the reason is printed per class;
- fail: a real incompatibility (the first error line is printed).

    .venv/bin/python bench/ray_compat.py ~/src/ray/python/ray/tests \\
        --files test_actor.py test_cancel.py ...

The README's "Differences from Ray" section explains each out-of-scope class.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM = os.path.join(HERE, "ray_compat")
#: The files issue 22 measured.
DEFAULT_FILES = (
    "test_actor.py",
    "test_actor_lifetime.py",
    "test_asyncio.py",
    "test_concurrency_group.py",
    "test_threaded_actor.py",
    "test_actor_failures.py",
    "test_cancel.py",
    "test_streaming_generator.py",
    "test_namespace.py",
    "test_get_or_create_actor.py",
)


def run_file(path: str, timeout: float) -> dict[str, dict[str, str]]:
    """Run one of Ray's test files against rigd; return each test's outcome."""
    with tempfile.TemporaryDirectory(prefix="ray-compat-") as work:
        shutil.copy(os.path.join(SHIM, "conftest.py"), work)
        shutil.copy(path, work)
        report = os.path.join(work, "report.json")
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([SHIM, os.environ.get("PYTHONPATH", "")]))
        env["RAY_COMPAT_REPORT"] = report
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "plugin", "-p", "no:cacheprovider",
            "-o", "addopts=", "-o", "filterwarnings=", f"--timeout={timeout:g}",
            "--rootdir", work, os.path.basename(path),
        ]  # fmt: skip
        proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
        if not os.path.exists(report):
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            return {path: {"outcome": "fail", "reason": "not collected: " + " | ".join(tail)}}
        with open(report) as f:
            results: dict[str, dict[str, str]] = json.load(f)
        if not results:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-3:]
            return {path: {"outcome": "fail", "reason": "not collected: " + " | ".join(tail)}}
        return results


def main() -> int:
    """Run the files and print pass / out of scope / fail per file, and the reasons."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ray_tests", help="a directory holding Ray's test files")
    parser.add_argument("--files", nargs="*", default=list(DEFAULT_FILES))
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per test")
    parser.add_argument("-v", "--verbose", action="store_true", help="list every failure")
    args = parser.parse_args()
    totals: collections.Counter[str] = collections.Counter()
    reasons: collections.Counter[str] = collections.Counter()
    failures: list[tuple[str, str]] = []
    print(f"{'file':<34} {'pass':>5} {'out of scope':>13} {'fail':>5}")
    for name in args.files:
        path = os.path.join(args.ray_tests, name)
        if not os.path.exists(path):
            print(f"{name:<34} (not in {args.ray_tests})")
            continue
        counts: collections.Counter[str] = collections.Counter()
        for test, result in run_file(path, args.timeout).items():
            counts[result["outcome"]] += 1
            if result["outcome"] == "out of scope":
                reasons[result["reason"]] += 1
            elif result["outcome"] == "fail":
                failures.append((test, result["reason"]))
        totals.update(counts)
        print(f"{name:<34} {counts['passed']:>5} {counts['out of scope']:>13} {counts['fail']:>5}")
    print(f"{'total':<34} {totals['passed']:>5} {totals['out of scope']:>13} {totals['fail']:>5}")
    print("\nout of scope, by reason:")
    for reason, count in reasons.most_common():
        print(f"  {count:>4}  {reason}")
    if failures:
        print("\nfailures:")
        for test, reason in failures if args.verbose else failures[:40]:
            print(f"  {test}: {reason[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
