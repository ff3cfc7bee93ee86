"""A run's log file and the last errors of its actors, on the supervisor's side.

Every actor of a run writes its log lines (its own ``self.log``, its
modules' loggers, rigd's) to one file beside the run file,
``<directory>/<run_id>.log``, each line with the time, the actor's name and
the logger's name (``rigd.actors.Actor`` installs the handler in the
actor's process when it attaches). The supervisor's own lines about the run
(restarts, failures, pauses) go there too, as ``supervisor``.

Where the directory comes from: the ``log_dir`` given to ``Pipeline`` (the
daemon gives its data directory), else the ``directory`` option of the
run's first recorder, else none (no file; lines still go to stderr).

An actor that gives up (``max_step_errors`` failing steps) writes its last
error to ``<status_dir>/<actor>.error`` before its process exits, so the
supervisor can say why the pipeline failed. ``status_dir`` is a private
temporary directory, removed when the run is torn down; its name carries
the supervisor's pid (``rigd-run-<pid>-<run_id>-XXXX``), so one left by a
supervisor killed with SIGKILL is removed when the next run starts.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rigd.actors import run_log_format

__all__ = ["RunLog", "default_log_dir", "run_log_path"]

_SUPERVISOR_LOGGER = "rigd.pipeline"
_STATUS_PREFIX = "rigd-run-"


class RunLog:
    """One run's log file (or none) and its actors' last-error files.

    Args:
        run_id: the run's id; names the file.
        directory: where the file goes (created if missing); ``None``: no file.
    """

    def __init__(self, run_id: str, directory: str | Path | None) -> None:
        self.path: Path | None = None
        if directory is not None:
            folder = Path(directory)
            folder.mkdir(parents=True, exist_ok=True)
            self.path = (folder / f"{run_id}.log").resolve()
        _sweep_stale_status_dirs(Path(tempfile.gettempdir()))
        self.status_dir = Path(tempfile.mkdtemp(prefix=f"{_STATUS_PREFIX}{os.getpid()}-{run_id}-"))
        self._handler: logging.Handler | None = None
        if self.path is not None:
            handler = logging.FileHandler(self.path, mode="a", encoding="utf-8")
            handler.setFormatter(logging.Formatter(run_log_format("supervisor")))
            logging.getLogger(_SUPERVISOR_LOGGER).addHandler(handler)
            self._handler = handler

    def run_info(self) -> dict[str, Any]:
        """What each actor needs to log into this run: ``log_path`` and ``status_dir``."""
        return {
            "log_path": str(self.path) if self.path is not None else None,
            "status_dir": str(self.status_dir),
        }

    def last_error(self, actor: str) -> str | None:
        """The last ``run_step`` error ``actor`` wrote before its process gave up, if any."""
        try:
            text = (self.status_dir / f"{actor}.error").read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return text or None

    def close(self) -> None:
        """Stop writing the supervisor's lines; remove the last-error files (idempotent)."""
        if self._handler is not None:
            logging.getLogger(_SUPERVISOR_LOGGER).removeHandler(self._handler)
            self._handler.close()
            self._handler = None
        with contextlib.suppress(OSError):
            shutil.rmtree(self.status_dir)


def _sweep_stale_status_dirs(tmp: Path) -> None:
    """Remove the status directories of supervisors that are gone (this user's only)."""
    uid = os.getuid()
    for path in tmp.glob(f"{_STATUS_PREFIX}*"):
        pid = path.name[len(_STATUS_PREFIX) :].partition("-")[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        with contextlib.suppress(OSError):
            if path.lstat().st_uid == uid and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def default_log_dir(recorders: list[tuple[type[Any], dict[str, Any]]]) -> str | None:
    """The run file's directory: the first recorder's ``directory`` option (or
    its class's default), if any recorder has one."""
    for cls, options in recorders:
        directory = options.get("directory")
        if directory is None:
            with contextlib.suppress(TypeError, ValueError):
                parameter = inspect.signature(cls).parameters.get("directory")
                if parameter is not None:
                    directory = parameter.default
        if isinstance(directory, str) and directory:
            return directory
    return None


def run_log_path(plan: Any, run_id: str, log_dir: str | Path | None = None) -> Path | None:
    """Where the log of run ``run_id`` of ``plan`` (a ``Plan``) goes:
    ``<log_dir, else the first recorder's directory>/<run_id>.log``; None
    when it has no such directory (no log file). ``rigd run`` refuses a run
    id whose log is there already, as the daemon refuses an id used before."""
    by_name = {a.name: a for a in plan.actors}
    directory = log_dir or default_log_dir(
        [(by_name[n].cls, dict(by_name[n].options)) for n in plan.recorders]
    )
    return Path(directory) / f"{run_id}.log" if directory else None
