"""A run's id at its start: a usable name, and never one used before.

``Daemon.start_run`` (``_daemon``) checks the id a client gives here: it
names the run file, so it must be a plain name; an id already used is
either a retry of the start under way (the same run again, safely) or a
refusal (a run is never recorded over). New ids come from
``_records.new_run_id``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rigd.service._records import RunRecord, TransitionError

__all__ = ["check_run_id", "retried_run"]

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_run_id(run_id: str | None) -> None:
    """Refuse a ``run_id`` that cannot name a run file (None: the daemon chooses).

    Raises:
        ValueError: not 1-128 letters, digits, ``.``, ``_`` or ``-``, starting
            with a letter or digit.
    """
    if run_id is not None and not _RUN_ID.match(run_id):
        raise ValueError(
            f"run_id must be 1-128 letters, digits, '.', '_' or '-' (it names the run "
            f"file), starting with a letter or digit; got {run_id!r}"
        )


def retried_run(
    runs: Mapping[str, RunRecord],
    current: RunRecord | None,
    run_id: str | None,
    metadata: Mapping[str, Any],
) -> RunRecord | None:
    """The run a start of ``run_id`` retries (``current``, still active), or
    None when the id is new (or None); call under the daemon's lock.

    Raises:
        TransitionError: ``run_id`` was used by another run (it is never
            recorded over), or the retry sends other metadata than the run has.
    """
    if run_id is None or run_id not in runs:
        return None
    used = runs[run_id]
    if used is current and used.active:
        if metadata and metadata != used.metadata:
            raise TransitionError(
                f"run {run_id!r} is under way with other metadata; a retry of "
                "its start must send the same metadata (or none), and a new "
                "run needs a new id once this one stops"
            )
        return used  # a retry of the start under way: safe
    where = f" (file {', '.join(used.files)})" if used.files else ""
    raise TransitionError(
        f"run id {run_id!r} was already used by a run that is {used.state}{where}; "
        "a run is never recorded over: start this run with a new id (e.g. "
        f"{run_id}-2), or without one to have the daemon choose"
    )
