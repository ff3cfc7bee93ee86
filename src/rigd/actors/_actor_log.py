"""A pipeline actor's logging, in its own process: its logger, its prefix, its run's file.

A worker starts with lines prefixed ``rigd worker N:`` (it does not know
yet which actor it will run). Once a pipeline actor attaches to its run,
``install`` prefixes every line of the process with the actor's name
instead, and, when the run has a log file, adds a handler appending to it
(``run_log_format``: time, actor, level, logger, message). Every process of
the run appends to the same file; each line is one ``write`` on a file
opened with ``O_APPEND``, so lines of different actors do not interleave.
"""

from __future__ import annotations

import logging
import threading

__all__ = ["actor_logger", "install", "run_log_format", "uninstall"]

_lock = threading.Lock()
_file_handler: logging.Handler | None = None


def run_log_format(actor: str) -> str:
    """The format of a run log line (``logging`` style) for ``actor``.

    ``2026-11-30 03:01:19,123 camera INFO rigd.pipeline._camera: message``.
    """
    # A literal % in an actor's name must not be read as a format field.
    name = actor.replace("%", "%%")
    return f"%(asctime)s {name} %(levelname)s %(name)s: %(message)s"


def actor_logger(actor: str) -> logging.Logger:
    """The logger named after ``actor`` (``self.log`` of a pipeline actor)."""
    return logging.getLogger(actor)


def install(actor: str, log_path: str | None) -> None:
    """Prefix this process's log lines with ``actor``; append them to ``log_path`` too.

    Runs in the actor's own process (``Actor.__rigd_attach__``); a second
    call replaces what the first installed.
    """
    global _file_handler
    root = logging.getLogger()
    prefix = logging.Formatter(f"{actor.replace('%', '%%')}: %(message)s")
    with _lock:
        for handler in root.handlers:
            if handler is not _file_handler:
                handler.setFormatter(prefix)
        if _file_handler is not None:
            root.removeHandler(_file_handler)
            _file_handler.close()
            _file_handler = None
        if log_path:
            handler = logging.FileHandler(log_path, mode="a", encoding="utf-8")
            handler.setFormatter(logging.Formatter(run_log_format(actor)))
            root.addHandler(handler)
            _file_handler = handler


def uninstall() -> None:
    """Stop appending to the run's file (the actor detached); the prefix stays."""
    global _file_handler
    with _lock:
        if _file_handler is not None:
            logging.getLogger().removeHandler(_file_handler)
            _file_handler.close()
            _file_handler = None
