"""The harness of the ``*_cpu.py`` benches: CPU time per frame, this tree against another.

Each measurement runs in a child process with ``PYTHONPATH`` set to one tree's
``src``; with ``--against OTHER/src`` the two trees run alternately, three
times each, and the best of each is compared (CPU time, not wall time, so a
busy machine bends the figures less).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path


def _run(script: str, src: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src)
    out = subprocess.run(
        [sys.executable, script, "--child"], env=env, capture_output=True, text=True, check=True
    )
    figures: dict[str, float] = json.loads(out.stdout)
    return figures


def ab_main(
    doc: str, script: str, measure: Callable[[], dict[str, float]], width: int, decimals: int
) -> None:
    """The command line of a ``*_cpu.py`` bench whose ``measure`` gives us of CPU per frame."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--against", help="the src folder of the rigd to compare with")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure()))
        return
    here = str(Path(script).resolve().parents[1] / "src")
    if not args.against:
        for name, us in _run(script, here).items():
            print(f"{name:{width}s} {us:8.{decimals}f} us of CPU per frame")
        return
    ours: list[dict[str, float]] = []
    theirs: list[dict[str, float]] = []
    for _ in range(3):
        theirs.append(_run(script, args.against))
        ours.append(_run(script, here))
    print(f"{'us of CPU per frame':{width}s} {'this tree':>10s} {'other':>8s} {'ratio':>6s}")
    for name in ours[0]:
        a = min(r[name] for r in ours)
        b = min(r[name] for r in theirs)
        print(f"{name:{width}s} {a:10.{decimals}f} {b:8.{decimals}f} {a / b:6.2f}")
