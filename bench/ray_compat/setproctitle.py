"""Stands for the ``setproctitle`` that Ray bundles (own code, for the runner).

rigd does not rename its worker processes ``ray::<task>``; reading the title
is counted as out of scope.
"""

from __future__ import annotations


def getproctitle() -> str:
    from ray import OutOfScope

    raise OutOfScope("Ray's process titles: setproctitle.getproctitle")


def setproctitle(title: str) -> None:
    from ray import OutOfScope

    raise OutOfScope("Ray's process titles: setproctitle.setproctitle")
