"""The places a loaded pipeline names, checked again when a run starts.

A pipeline's places are confined when it is loaded (``_confine``), but a run
may start hours later: meanwhile a directory may have been removed, made
unwritable, turned into a file, or swapped for a symlink that leads out of
the data directory, and an input file may be gone. ``check_places`` checks
every ``data_dir`` and ``data_file`` option of the plan again, by the same
rules, just before a run starts; a problem refuses the start with 409,
naming the actor, the option, the path and the fix, before anything is
journalled or spawned.

The check is a check: a swap between it and the recorder's open is caught
by the open itself (``rigd.pipeline``'s ``open_beneath``: every component
opened with ``O_NOFOLLOW``, symlinks followed only inside the data
directory; the run's ``confine_to``).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from rigd.pipeline import Plan
from rigd.service._confine import Confinement
from rigd.service._records import TransitionError

__all__ = ["check_places"]


def check_places(confinement: Confinement, plan: Plan) -> None:
    """Check every place ``plan`` names, as at load, and that each is usable now.

    ``data_dir``: inside the data directory by its real path, and a writable
    directory (or missing, with its nearest existing parent one: the actor
    creates it). ``data_file``: inside, and a regular file.

    Raises:
        TransitionError: (HTTP 409) one message for every problem, each naming
            the actor, the option, the path and the fix; nothing is changed.
    """
    problems: list[str] = []
    for actor in plan.actors:
        declared = getattr(actor.cls, "place_options", {}) or {}
        for key, kind in declared.items():
            value = actor.options.get(key)
            if not isinstance(value, str) or kind not in ("data_dir", "data_file"):
                continue
            try:
                if kind == "data_file":
                    confinement.data_file(key, value)
                else:
                    _writable_dir(confinement.data_path(key, value), key)
            except ValueError as exc:
                problems.append(f"actor {actor.name!r}: {exc}")
    if problems:
        raise TransitionError(
            "the run cannot start: "
            + "; ".join(problems)
            + ". The pipeline's places were checked when it was loaded and have changed "
            "since; fix them (or load the pipeline again) and start the run again"
        )


def _writable_dir(path: Path, key: str) -> None:
    """``path`` is a directory this process may write into, or may be created."""
    probe = path
    while True:
        try:
            info = os.stat(probe)
            break
        except FileNotFoundError:
            probe = probe.parent
        except OSError as exc:
            raise ValueError(f"option {key!r}: {path} cannot be used: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise ValueError(
            f"option {key!r}: {probe} is not a directory (a file is in its place); "
            "remove it or give another directory"
        )
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(
            f"option {key!r}: the directory {probe} is not writable by the daemon "
            f"(uid {os.geteuid()}); make it writable (chmod/chown) or give another directory"
        )
