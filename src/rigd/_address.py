"""Where the local daemon is: the file ``rigd serve`` writes and its clients read.

The daemon writes ``daemon.json`` into its runtime directory when it can
serve, and removes it when it exits. It names the actor session (for
``rigd.init(address="auto")``) and the REST API (for the ``rigd`` CLI
client). Clients look in the places a daemon may have used, in order:

1. ``$RIGD_ADDRESS`` (a runtime directory or a ``daemon.json`` path), and
   then nowhere else;
2. ``$RUNTIME_DIRECTORY`` (systemd's ``RuntimeDirectory=``), then
   ``$XDG_RUNTIME_DIR/rigd``, then ``/run/rigd``;
3. ``/tmp/rigd-<uid>`` (no runtime directory at all).

A file whose daemon pid is dead is ignored: that daemon crashed.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from rigd._proc import pid_alive

__all__ = ["DaemonAddress", "default_runtime_dir", "find_daemon", "runtime_dir_candidates"]

ADDRESS_ENV = "RIGD_ADDRESS"
DAEMON_FILE = "daemon.json"


@dataclass(frozen=True)
class DaemonAddress:
    """How to reach a running daemon."""

    pid: int
    session_dir: str
    shm_prefix: str
    url: str
    token_file: str
    num_cpus: float
    num_gpus: float
    version: str

    def write(self, runtime_dir: str | Path) -> Path:
        """Write ``daemon.json`` atomically (readable by the daemon's user only)."""
        directory = Path(runtime_dir)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / DAEMON_FILE
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".daemon-")
        with os.fdopen(fd, "w") as f:
            json.dump(asdict(self), f, indent=2)
        os.replace(tmp, path)
        return path

    @classmethod
    def read(cls, path: str | Path) -> DaemonAddress:
        data = json.loads(Path(path).read_text())
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def default_runtime_dir() -> Path:
    """Where a daemon started here writes ``daemon.json`` unless configured otherwise."""
    for variable in ("RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"):
        value = os.environ.get(variable)
        if value:
            # systemd may list several directories; the first is ours.
            first = value.split(":")[0]
            return Path(first) if variable == "RUNTIME_DIRECTORY" else Path(first) / "rigd"
    return Path(tempfile.gettempdir()) / f"rigd-{os.getuid()}"


def runtime_dir_candidates() -> list[Path]:
    """Every place a daemon on this machine may have written ``daemon.json``, in order."""
    explicit = os.environ.get(ADDRESS_ENV)
    if explicit:  # told where: look nowhere else
        path = Path(explicit)
        return [path.parent if path.name == DAEMON_FILE else path]
    found = [default_runtime_dir()]
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        found.append(Path(xdg) / "rigd")
    found.extend([Path("/run/rigd"), Path(tempfile.gettempdir()) / f"rigd-{os.getuid()}"])
    return list(dict.fromkeys(found))


def find_daemon() -> DaemonAddress | None:
    """The running local daemon's address, or ``None`` if none runs."""
    for directory in runtime_dir_candidates():
        path = directory / DAEMON_FILE
        try:
            address = DaemonAddress.read(path)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid_alive(address.pid):
            return address
    return None
