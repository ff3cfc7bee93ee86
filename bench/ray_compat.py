#!/usr/bin/env python3
"""How much of Ray's own actor test suite runs on rigd, by file (run by hand).

Ray's test files are not part of rigd: point this at a directory holding
them (from a checkout of https://github.com/ray-project/ray, its
``python/ray/tests/``). Each file runs in its own pytest process with a
``ray`` -> ``rigd`` name shim (``bench/ray_compat/ray``) and single-machine
fixtures (``bench/ray_compat/conftest.py``), and each test is counted:

- pass;
- out of scope: one of the ``CLASSES`` below, each with why it cannot
  exist in a one-machine runtime or is not Ray's API today (the shim raises
  ``OutOfScope`` naming the class and what the test used; the conftest's
  ``OneNodeCluster`` refuses a second node; ``NOT_RAYS_API`` names tests of
  behaviour modern Ray dropped), or skipped by Ray's own file;
- fail: a real incompatibility, or single-machine Ray API that rigd or the
  runner lacks (the first error line is printed).

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

#: The out-of-scope classes and why each is out of scope (README's
#: "Differences from Ray" says the same).
CLASSES = {
    "multi-node cluster": "a second node, a node removed, Ray Client: a rigd session is one "
    "machine",
    "Ray internals": "ray._private, the core worker, GCS tables and pubsub, private ObjectRef "
    "methods and hooks: Ray's implementation, not the API actor code uses",
    "object store": "eviction and object listing: rigd has no object store (values travel "
    "with their refs)",
    "dropped by modern Ray": "Ray 1.x behaviour that Ray 2.60 fails too (run against it)",
    "Ray's process titles": "Ray names its workers ray::<task>; rigd's processes do not "
    "take Ray's name",
}


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
    excluded: dict[str, list[str]] = collections.defaultdict(list)
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
                kind = result["reason"].split(": ", 1)[0]
                if kind not in CLASSES and not kind.startswith("skipped"):
                    kind = f"unclassified ({kind})"
                reasons[kind] += 1
                excluded[kind].append(f"{test}: {result['reason']}")
            elif result["outcome"] == "fail":
                failures.append((test, result["reason"]))
        totals.update(counts)
        print(f"{name:<34} {counts['passed']:>5} {counts['out of scope']:>13} {counts['fail']:>5}")
    print(f"{'total':<34} {totals['passed']:>5} {totals['out of scope']:>13} {totals['fail']:>5}")
    print("\nout of scope, by class:")
    for reason, count in reasons.most_common():
        print(f"  {count:>4}  {reason}: {CLASSES.get(reason, '')}")
        for line in excluded[reason] if args.verbose else ():
            print(f"          {line[:150]}")
    if failures:
        print("\nfailures:")
        for test, reason in failures if args.verbose else failures[:40]:
            print(f"  {test}: {reason[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
