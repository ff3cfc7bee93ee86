"""What every ``rigd run`` does before it starts anything, on this machine
(``_run``) or across a Ray cluster (``_run_cluster``), said the same way.

- ``import_from_cwd``: actor classes of the user's own import from the
  current directory, as with ``python -m`` (``myactors.Slow`` in
  ``./myactors.py``).
- ``say_file_problems``: a pipeline file that cannot be used is named with
  every problem, and the run exits 2.
- ``refuse_run_id``: a ``--run-id`` that cannot name a file is refused.
- ``claim_for_run``: the run id is claimed in the data directory here (its
  log, ``_run_claim``): one in use or used before is refused, an automatic
  one that is taken becomes ``ID-2``, ``ID-3``, ...
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TextIO

from rigd._exceptions import PipelineFileError, RigdError
from rigd.service._run_claim import RunIdClaim, claim_run_id

__all__ = [
    "claim_for_run",
    "import_from_cwd",
    "refuse_run_id",
    "say_file_problems",
]

#: A run id, as the REST API takes it (it names the run file).
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class _RunIdRefusedError(RigdError):
    """The run id cannot be claimed; the reason was said on ``err``: exit 2."""


def import_from_cwd() -> None:
    """Put the current directory on ``sys.path`` (first), unless it is there
    (as ``""`` or itself): actor classes import from it as with ``python -m``;
    the actor processes, and a Ray driver's workers, inherit this path."""
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def say_file_problems(source: Path, exc: PipelineFileError, err: TextIO) -> int:
    """Say every problem of the pipeline file ``source`` on ``err``; the exit status, 2."""
    print(f"rigd run: {source} has {len(exc.problems)} problem(s); nothing was started:", file=err)
    for problem in exc.problems:
        print(f"  {problem}", file=err)
    return 2


def refuse_run_id(run_id: str | None, err: TextIO) -> bool:
    """True (said on ``err``) when ``run_id`` cannot name a run file; None is rigd's."""
    if run_id is None or _RUN_ID.fullmatch(run_id):
        return False
    print(
        f"rigd run: run id {run_id!r}: use letters, digits, '.', '_' and '-' (up to 128, "
        "starting with a letter or digit), e.g. m12-s3; nothing was started",
        file=err,
    )
    return True


def claim_for_run(
    log: Path | None, run_id: str, *, automatic: bool, err: TextIO
) -> RunIdClaim | None:
    """Claim ``run_id`` by its log ``log`` (``claim_run_id``; None: the run keeps no
    log here, nothing to claim). ``automatic``: rigd chose the id (the time to
    the second), so a taken one becomes the first free ``ID-2``, ``ID-3``, ...,
    which is said on ``err``; the claim's ``run_id`` is the run's.

    Raises:
        _RunIdRefusedError: the id is in use, or was used before, or its log cannot be
            made; the message (the fix, and that nothing was started) is on ``err``.
    """
    if log is None:
        return None
    try:
        # Its log, created here and held: an id in use or used before is refused
        # before anything starts, however close two starts come (``_run_claim``).
        claim = claim_run_id(log, run_id, automatic=automatic)
    except FileExistsError as exc:  # in use, or used before: the message says which
        print(f"rigd run: {exc}", file=err)
        raise _RunIdRefusedError(str(exc)) from None
    except OSError as exc:
        print(
            f"rigd run: cannot create the run's log {log} ({exc.strerror or exc}): make its "
            "directory (the first recorder's) writable, or record elsewhere; nothing was "
            "started",
            file=err,
        )
        raise _RunIdRefusedError(str(exc)) from None
    if claim.run_id != run_id:
        print(
            f"rigd run: run id {run_id!r} is taken here (a run of the same second); "
            f"this run is {claim.run_id!r}",
            file=err,
        )
    return claim
