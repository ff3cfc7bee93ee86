"""Where the local daemon is: the file ``rigd serve`` writes and its clients read.

The daemon writes ``daemon.json`` into its runtime directory when it can
serve, and removes it when it exits. It names the actor session (for
``rigd.init(address="auto")``) and the REST API (for the ``rigd`` CLI
client). Clients look in the places a daemon may have used, in order:

1. ``$RIGD_ADDRESS`` (a runtime directory or a ``daemon.json`` path), and
   then nowhere else;
2. ``$RUNTIME_DIRECTORY`` (systemd's ``RuntimeDirectory=``), then
   ``/run/rigd``, then ``$XDG_RUNTIME_DIR/rigd``;
3. ``/tmp/rigd-<uid>`` (no runtime directory at all).

A file whose daemon pid is dead is ignored: that daemon crashed.

``daemon.json`` names the token file the clients send, so it is trusted only
where nobody else could have put it (as ssh trusts its files): its directory
must be a real directory (not a symlink) owned by this user or by root, and
writable by its owner only; the fallback in the shared ``/tmp`` must be this
user's own, mode 0700; the file itself must be a regular file owned by this
user or root, writable by its owner only. A directory that fails is skipped
and the reason is told (``DaemonSearch.refused``).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rigd._proc import pid_alive

__all__ = [
    "DaemonAddress",
    "DaemonSearch",
    "default_runtime_dir",
    "find_daemon",
    "prepare_runtime_dir",
    "runtime_dir_candidates",
    "search_daemon",
    "untrusted_reason",
]

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
        prepare_runtime_dir(directory)
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
    found = []
    systemd = os.environ.get("RUNTIME_DIRECTORY")
    if systemd:
        found.append(Path(systemd.split(":")[0]))
    found.append(Path("/run/rigd"))
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        found.append(Path(xdg.split(":")[0]) / "rigd")
    found.append(_tmp_fallback())
    return list(dict.fromkeys(found))


def _tmp_fallback() -> Path:
    return Path(tempfile.gettempdir()) / f"rigd-{os.getuid()}"


def untrusted_reason(directory: Path) -> str | None:
    """Why ``directory`` (and its ``daemon.json``) may not be trusted, or None.

    Raises:
        FileNotFoundError: there is no such directory (nothing to refuse).
    """
    me = os.geteuid()
    info = os.lstat(directory)
    if stat.S_ISLNK(info.st_mode):
        return "it is a symlink; a daemon's runtime directory is a real directory"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a directory"
    shared_parent = _tmp_fallback() == directory
    if shared_parent and info.st_uid != me:
        return (
            f"it is owned by uid {info.st_uid}, not by you (uid {me}), in a directory anyone "
            "may write to: someone else may have made it; remove it"
        )
    if info.st_uid not in (me, 0):
        return f"it is owned by uid {info.st_uid}, not by you (uid {me}) or root"
    if shared_parent and info.st_mode & 0o077:
        return (
            f"its mode is {stat.S_IMODE(info.st_mode):o}; in a shared directory it must be "
            "0700 (chmod 700 it)"
        )
    if info.st_mode & 0o022:
        return (
            f"its mode is {stat.S_IMODE(info.st_mode):o}, writable by others; it must be "
            "writable by its owner only (chmod go-w)"
        )
    try:
        finfo = os.lstat(directory / DAEMON_FILE)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(finfo.st_mode):
        return f"its {DAEMON_FILE} is not a regular file"
    if finfo.st_uid not in (me, 0, info.st_uid) or finfo.st_mode & 0o022:
        return f"its {DAEMON_FILE} is owned by uid {finfo.st_uid} or writable by others"
    return None


@dataclass
class DaemonSearch:
    """Where a client looked for the daemon, and what it found."""

    address: DaemonAddress | None = None
    looked: list[Path] = field(default_factory=list)
    #: Each directory refused, and why.
    refused: dict[Path, str] = field(default_factory=dict)

    def explain(self) -> str:
        """``no live daemon.json in A, B`` and each refusal, for an error message."""
        text = f"no live daemon.json in {', '.join(str(p) for p in self.looked)}"
        for place, reason in self.refused.items():
            text += f"; refused {place}: {reason}"
        return text


def search_daemon() -> DaemonSearch:
    """Look for the running local daemon in every trusted place, in order."""
    search = DaemonSearch()
    for directory in runtime_dir_candidates():
        search.looked.append(directory)
        try:
            reason = untrusted_reason(directory)
        except OSError:
            continue  # no such directory
        if reason is not None:
            search.refused[directory] = reason
            continue
        try:
            address = DaemonAddress.read(directory / DAEMON_FILE)
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid_alive(address.pid):
            search.address = address
            return search
    return search


def find_daemon() -> DaemonAddress | None:
    """The running local daemon's address, or ``None`` if none runs (in a trusted place)."""
    return search_daemon().address


def prepare_runtime_dir(directory: Path) -> None:
    """Make ``directory`` for ``daemon.json`` (mode 0700), or refuse one others control.

    Raises:
        PermissionError: the directory exists and clients would not trust it;
        the message says why and what to do.
    """
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    reason = untrusted_reason(directory)
    if reason is not None:
        raise PermissionError(
            f"cannot use {directory} as the runtime directory: {reason}; clients would not "
            "trust a daemon.json there (set runtime_dir in the service config elsewhere)"
        )
