"""What a pipeline loaded into the daemon may name: places and classes.

Loading a pipeline is an attack surface: its text may come over HTTP, and
each actor's options are handed to code that opens files, binds sockets and
imports modules inside the daemon. So every option that names a place is
checked before anything starts (before a class's ``describe_outputs`` runs):

- an actor class declares the options that name places in ``place_options``
  (option name -> kind):

  ``data_dir``   a directory the actor writes into: relative to the data
                 directory, and inside it;
  ``data_file``  a file the actor reads: inside the data directory, and a
                 regular file (never a FIFO or a device: a load never blocks);
  ``zmq``        a ZMQ endpoint the actor binds: ``ipc://NAME`` is a socket
                 file in the daemon's runtime directory (``<runtime>/ipc``);
                 ``tcp://HOST:PORT`` must bind a loopback address unless the
                 service config lists HOST in ``publish_hosts``.

- any other option whose name says it is a place (path, file, dir,
  directory, address, device, socket, url, endpoint) or a class (class,
  module), and any other string value that looks like one (an absolute
  path, ``~``, a ``..`` component, or ``scheme://``), is refused: declare it
  in the class's ``place_options``.

Errors never tell a client whether a file outside the data directory exists:
paths are judged by their text (then by where their symlinks lead, inside
the data directory only), and the message is the same either way.
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["PLACE_KINDS", "Confinement"]

PLACE_KINDS = ("data_dir", "data_file", "zmq")
_PLACE_NAME = re.compile(
    r"(^|_)(path|paths|file|files|filename|dir|dirs|directory|address|device|socket|url|uri|"
    r"endpoint|class|module|cls)$",
    re.IGNORECASE,
)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_LOOPBACK_NAMES = {"localhost", "ip6-localhost"}


class Confinement:
    """The rules for one daemon: its data directory, runtime directory and allowed hosts.

    Args:
        data_dir: where run files are written and read.
        runtime_dir: the daemon's runtime directory (ipc sockets go in ``ipc/``).
        publish_hosts: non-loopback hosts a ZMQ publisher may bind (the
            service config's explicit allow).
    """

    def __init__(
        self, data_dir: Path, runtime_dir: Path, publish_hosts: Sequence[str] = ()
    ) -> None:
        self.data_dir = Path(os.path.abspath(data_dir))
        self.ipc_dir = Path(os.path.abspath(runtime_dir)) / "ipc"
        self.publish_hosts = {h.strip("[]").lower() for h in publish_hosts}

    def remove_sockets(self) -> None:
        """Remove the ipc socket files a run's actors left in the runtime directory."""
        try:
            names = os.listdir(self.ipc_dir)
        except OSError:
            return
        for name in names:
            path = self.ipc_dir / name
            try:
                if stat.S_ISSOCK(os.lstat(path).st_mode):
                    os.unlink(path)
            except OSError:
                continue

    # -- one actor -------------------------------------------------------------------------

    def options(self, cls: type, options: Mapping[str, Any]) -> dict[str, Any]:
        """``options`` with every place made absolute and checked.

        Raises:
            ValueError: one message per problem, joined by '; ', each naming
            the option and the fix.
        """
        declared: Mapping[str, str] = getattr(cls, "place_options", {}) or {}
        problems: list[str] = []
        out = dict(options)
        for key, value in options.items():
            kind = declared.get(key)
            if kind is None:
                problems.extend(self._undeclared(cls, key, value))
                continue
            if value is None:
                continue
            try:
                if kind == "data_dir":
                    out[key] = str(self.data_path(key, value))
                elif kind == "data_file":
                    out[key] = str(self.data_file(key, value))
                elif kind == "zmq":
                    out[key] = self.zmq_endpoint(key, value)
                else:
                    problems.append(
                        f"option {key!r}: {cls.__name__}.place_options gives it the unknown kind "
                        f"{kind!r}; kinds are {', '.join(PLACE_KINDS)}"
                    )
            except ValueError as exc:
                problems.append(str(exc))
        # Defaults name places too (the recorder writes to rigd-data by default).
        for key, kind in declared.items():
            if key not in options and kind == "data_dir":
                default = _default(cls, key)
                if isinstance(default, str):
                    out[key] = str(self.data_path(key, default))
        if problems:
            raise ValueError("; ".join(problems))
        return out

    def _undeclared(self, cls: type, key: str, value: Any) -> Iterator[str]:
        fix = (
            f"{cls.__name__} does not declare it as a place (place_options), so the daemon "
            "cannot confine it; use an actor that declares it"
        )
        if _PLACE_NAME.search(key) and value is not None:
            yield f"option {key!r} names a place or a class; {fix}"
            return
        for text in _strings(value):
            if _looks_like_place(text):
                yield (
                    f"option {key!r} holds {_short(text)!r}, which looks like a path or an "
                    f"address; {fix}"
                )
                return

    # -- kinds -------------------------------------------------------------------------------

    def data_path(self, key: str, value: Any) -> Path:
        """``value`` as a path inside the data directory (relative to it)."""
        if not isinstance(value, str) or not value or "\0" in value:
            raise ValueError(
                f"option {key!r} must be a path relative to the data directory, got "
                f"{_short(str(value))!r}"
            )
        outside = ValueError(
            f"option {key!r} = {_short(value)!r} is outside the service's data directory "
            f"{self.data_dir}; give a path relative to it (e.g. 'rigd-data')"
        )
        if value.startswith("~"):
            raise outside
        # By its text first: nothing outside is looked at.
        path = Path(os.path.normpath(self.data_dir / value))
        if not _inside(path, self.data_dir):
            raise outside
        # Then where its symlinks lead (only components inside the data directory).
        real = Path(os.path.realpath(path))
        if not _inside(real, Path(os.path.realpath(self.data_dir))):
            raise outside
        return path

    def data_file(self, key: str, value: Any) -> Path:
        """``value`` as a regular file inside the data directory."""
        path = self.data_path(key, value)
        try:
            info = os.stat(path)  # stat never opens: a FIFO does not block here
        except OSError:
            raise ValueError(
                f"option {key!r}: no file {_short(str(value))!r} in the data directory "
                f"{self.data_dir}; give a run file's path relative to it"
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(
                f"option {key!r}: {_short(str(value))!r} is not a regular file; give a run "
                "file's path relative to the data directory"
            )
        return path

    def zmq_endpoint(self, key: str, value: Any) -> str:
        """A ZMQ endpoint the daemon may bind: ipc in its runtime directory, tcp on loopback."""
        if not isinstance(value, str) or "\0" in value:
            raise ValueError(f"option {key!r} must be a ZMQ address such as tcp://127.0.0.1:5555")
        scheme, _, rest = value.partition("://")
        if scheme == "ipc":
            own = str(self.ipc_dir) + "/"
            name = rest[len(own) :] if rest.startswith(own) else rest
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
                raise ValueError(
                    f"option {key!r} = {_short(value)!r}: an ipc socket must be a plain name "
                    f"(e.g. ipc://viewer), created in the daemon's runtime directory "
                    f"{self.ipc_dir}; other paths are refused"
                )
            self.ipc_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            return f"ipc://{self.ipc_dir / name}"
        if scheme == "tcp":
            try:
                parts = urlsplit(value)
                host, port = parts.hostname, parts.port
            except ValueError:
                host, port = None, None
            if not host or port is None or parts.path not in ("", "/"):
                raise ValueError(
                    f"option {key!r} = {_short(value)!r}: give tcp://HOST:PORT, e.g. "
                    "tcp://127.0.0.1:5555"
                )
            if not _loopback(host) and host.lower() not in self.publish_hosts:
                raise ValueError(
                    f"option {key!r} = {_short(value)!r} would publish frames to the network "
                    "without authentication; bind a loopback address (tcp://127.0.0.1:PORT), "
                    f"or list {host!r} under publish_hosts in the service config"
                )
            return value
        raise ValueError(
            f"option {key!r} = {_short(value)!r}: the daemon binds only tcp:// (loopback) and "
            "ipc:// (its runtime directory) addresses"
        )


def _default(cls: type, key: str) -> Any:
    import inspect

    try:
        parameter = inspect.signature(cls.__init__).parameters.get(key)  # type: ignore[misc]
    except (TypeError, ValueError):
        return None
    return None if parameter is None else parameter.default


def _inside(path: Path, directory: Path) -> bool:
    return path == directory or path.is_relative_to(directory)


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _looks_like_place(text: str) -> bool:
    return (
        text.startswith(("/", "~", "\\"))
        or bool(_SCHEME.match(text))
        or ".." in re.split(r"[/\\]", text)
        or "\0" in text
    )


def _short(text: str, n: int = 240) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."
