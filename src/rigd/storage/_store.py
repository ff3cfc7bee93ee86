"""A store by key: objects shared by a pipeline's actors and scripts on this machine.

improv's ``client.put(obj, "name")`` / ``client.get("name")``, without a
server: each entry is one file in shared memory (``/dev/shm``), holding the
object pickled with protocol 5 and its numpy arrays apart (``_oob``).
``get`` maps the file and unpickles with every array a read-only *view* of
it: a 1 GiB array is not copied by any reader, however many there are.
``put`` writes a new file and renames it over the old one, so a reader sees
the old object or the new one, never half of either, and what a reader holds
stays valid after the key is replaced or deleted.

Use (``rigd.store``)::

    import rigd.store

    rigd.store.put("rois", {"masks": masks, "ids": [3, 7]})   # any picklable object
    rois = rigd.store.get("rois")        # arrays are read-only views, no copy
    rigd.store.keys()                    # ["rois"]
    rigd.store.delete("rois")
    rigd.store.put("model", weights, keep=True)   # survives the run's end

Which store: a pipeline's actors (and programs they start) use their
pipeline's store, found through the ``RIGD_STORE`` environment variable that
the pipeline sets in their processes. Any other process uses its own store,
made on first use, so a script that runs a ``Pipeline`` shares the store of
its actors. A separate script reaches a running daemon's (or driver's) store
with ``attach()`` (the only live one, or by owner pid), or by setting
``RIGD_STORE`` to its path.

The directory exists while the store has entries: ``put`` makes it, and
the last ``delete`` (or a run's end that leaves it empty) removes it.

Lifetimes: an entry an actor puts belongs to its run and is removed when
the run ends (the pipeline logs the keys it removes and those it keeps),
unless put with ``keep=True``. Other entries last as long as the store's
owner (the daemon, or the script running the pipeline). The owner removes
the store when it exits; a store whose owner was killed is removed at the
next pipeline load or daemon start (``remove_stale_stores``), as rings are.

Layout: the store is the directory ``/dev/shm/rigd-<owner pid>-store``; an
entry is the file ``k-<key, %-quoted>``: the magic ``RIGDSTOR``, a u32
header length, a JSON header (``key``, ``run``, ``keep``), then at the next
64-byte boundary the packed object (``_oob``).
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import json
import mmap
import os
import shutil
import struct
import urllib.parse
from typing import Any

from rigd._proc import pid_alive
from rigd.storage._oob import dumps, loads_from, pack_into
from rigd.storage._ring_segment import SHM_DIR, shm_free_bytes

__all__ = [
    "RUN_ENV",
    "STORE_ENV",
    "Store",
    "attach",
    "current_store",
    "own_store",
    "remove_stale_stores",
]

#: Set in a pipeline actor's process: its pipeline's store directory, and its run.
STORE_ENV = "RIGD_STORE"
RUN_ENV = "RIGD_STORE_RUN"
_MAGIC = b"RIGDSTOR"
_PREFIX = "k-"
_MAX_NAME = 240
_ALIGN = 64
_counter = itertools.count()


class Store:
    """One store: a directory of entries in shared memory (see the module docstring)."""

    def __init__(self, path: str, run_id: str | None = None) -> None:
        #: The store's directory (``/dev/shm/rigd-<owner pid>-store``).
        self.path = path
        #: The run that entries put through this object belong to (None: the owner's).
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"Store({self.path!r})"

    # -- the API -----------------------------------------------------------------------

    def put(self, key: str, obj: Any, *, keep: bool = False) -> None:
        """Store ``obj`` under ``key``, replacing what was there.

        Args:
            key: a non-empty string (any characters; at most about 80 once
                %-quoted into a file name of 240).
            obj: any picklable object; its numpy arrays are stored as they
                are, for readers to view without a copy.
            keep: keep the entry when the run that put it ends (it then
                lasts as long as the store's owner).

        Raises:
            TypeError: ``key`` is not a string, or ``obj`` cannot be pickled
                (``SerializationError``).
            ValueError: ``key`` is empty or too long.
            OSError: ``/dev/shm`` has too little free space (nothing is stored).
        """
        name = _entry_name(key)
        packed = dumps(obj)
        header = json.dumps({"key": key, "run": self.run_id, "keep": bool(keep)}).encode()
        start = _round_up(len(_MAGIC) + 4 + len(header), _ALIGN)
        size = start + packed.nbytes
        free = shm_free_bytes()
        if size > free:
            raise OSError(
                f"storing {key!r} needs {size / 2**20:.1f} MiB but {SHM_DIR} has "
                f"{free / 2**20:.1f} MiB free; delete entries or enlarge {SHM_DIR}"
            )
        tmp = os.path.join(self.path, f".tmp-{os.getpid()}-{next(_counter)}")
        for attempt in range(3):
            os.makedirs(self.path, mode=0o700, exist_ok=True)
            try:
                fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
                break
            except FileNotFoundError:
                if attempt == 2:  # the directory went with its last entry, each time
                    raise
        try:
            os.posix_fallocate(fd, 0, size)
            with mmap.mmap(fd, size) as area:
                area[: len(_MAGIC)] = _MAGIC
                struct.pack_into("<I", area, len(_MAGIC), len(header))
                area[len(_MAGIC) + 4 : len(_MAGIC) + 4 + len(header)] = header
                view = memoryview(area)
                try:
                    pack_into(packed, view[start:])
                finally:
                    view.release()
            os.rename(tmp, os.path.join(self.path, name))
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        finally:
            os.close(fd)

    def get(self, key: str, *, copy: bool = False) -> Any:
        """The object stored under ``key``.

        Its numpy arrays are read-only views of shared memory (no copy),
        valid for as long as they are referenced, whatever happens to the
        key later. ``copy=True`` gives writable copies instead.

        Raises:
            KeyError: nothing is stored under ``key``.
            TypeError: ``key`` is not a string.
        """
        path = os.path.join(self.path, _entry_name(key))
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise KeyError(
                f"nothing stored under {key!r} in {self.path} (its keys: {self.keys()[:20]})"
            ) from None
        try:
            mapping = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        start = _payload_offset(mapping, path)
        return loads_from(memoryview(mapping)[start:], copy=copy)

    def keys(self) -> list[str]:
        """Every key in the store, sorted."""
        return sorted(entry["key"] for entry in self._entries())

    def delete(self, key: str) -> None:
        """Remove ``key``'s entry; readers keep what they hold.

        Raises:
            KeyError: nothing is stored under ``key``.
        """
        try:
            os.unlink(os.path.join(self.path, _entry_name(key)))
        except FileNotFoundError:
            raise KeyError(f"nothing stored under {key!r} in {self.path}") from None
        self._remove_if_empty()

    def _remove_if_empty(self) -> None:
        """An empty store leaves nothing in /dev/shm (``put`` makes it again)."""
        with contextlib.suppress(OSError):
            os.rmdir(self.path)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and os.path.exists(os.path.join(self.path, _entry_name(key)))

    # -- the owner's side ----------------------------------------------------------------

    def end_run(self, run_id: str) -> tuple[list[str], list[str]]:
        """Remove run ``run_id``'s entries unless kept; return (removed, kept) keys.

        Also removes half-written entries of processes that died mid-``put``.
        """
        removed, kept = [], []
        for entry in self._entries():
            if entry["run"] != run_id:
                continue
            if entry["keep"]:
                kept.append(entry["key"])
                continue
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry["file"])
                removed.append(entry["key"])
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(self.path):
                pid = name.split("-")[1] if name.startswith(".tmp-") else ""
                if pid.isdigit() and not pid_alive(int(pid)):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(os.path.join(self.path, name))
        self._remove_if_empty()
        return sorted(removed), sorted(kept)

    def remove(self) -> None:
        """Remove the whole store (its owner does this when it exits)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def _entries(self) -> list[dict[str, Any]]:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        entries = []
        for name in names:
            if not name.startswith(_PREFIX):
                continue
            path = os.path.join(self.path, name)
            try:
                with open(path, "rb") as f:
                    head = f.read(len(_MAGIC) + 4)
                    (length,) = struct.unpack_from("<I", head, len(_MAGIC))
                    header = json.loads(f.read(length))
            except (FileNotFoundError, struct.error, ValueError):
                continue  # deleted meanwhile, or not an entry
            entries.append({**header, "file": path})
        return entries


def _entry_name(key: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"a store key is a string, got {type(key).__name__}")
    if not key:
        raise ValueError("a store key cannot be empty")
    name = _PREFIX + urllib.parse.quote(key, safe="")
    if len(name) > _MAX_NAME:
        raise ValueError(
            f"store key {key[:40]!r}... is too long ({len(name)} characters once quoted, "
            f"at most {_MAX_NAME}); use a shorter key"
        )
    return name


def _payload_offset(mapping: mmap.mmap, path: str) -> int:
    if mapping[: len(_MAGIC)] != _MAGIC:
        raise ValueError(f"{path} is not a rigd store entry")
    (length,) = struct.unpack_from("<I", mapping, len(_MAGIC))
    return _round_up(len(_MAGIC) + 4 + length, _ALIGN)


def _round_up(n: int, to: int) -> int:
    return -(-n // to) * to


# -- which store -------------------------------------------------------------------------

_own: Store | None = None


def _own_path(pid: int) -> str:
    return os.path.join(SHM_DIR, f"rigd-{pid}-store")


def own_store() -> Store:
    """This process's own store (made on first use, removed when it exits)."""
    global _own
    if _own is None or _own.path != _own_path(os.getpid()):
        _own = Store(_own_path(os.getpid()))
        atexit.register(_own.remove)
    return _own


def current_store() -> Store:
    """The store ``rigd.store.put``/``get`` use: the pipeline's in an actor
    (``RIGD_STORE``), else this process's own."""
    path = os.environ.get(STORE_ENV)
    if path:
        return Store(path, os.environ.get(RUN_ENV) or None)
    return own_store()


def attach(owner: int | str | None = None) -> Store:
    """Another process's store: by owner pid, by path, or (``None``) the only
    live store on this machine other than this process's.

    Raises:
        LookupError: no such store, or several (name the owner's pid).
    """
    if isinstance(owner, str):
        if not os.path.isdir(owner):
            raise LookupError(f"no store at {owner!r}")
        return Store(owner)
    if owner is not None:
        path = _own_path(int(owner))
        if not os.path.isdir(path):
            raise LookupError(f"process {owner} has no store ({path} does not exist)")
        return Store(path)
    live = [p for pid, p in _stores() if pid != os.getpid() and pid_alive(pid) and os.path.isdir(p)]
    if len(live) != 1:
        raise LookupError(
            f"{len(live)} live rigd stores on this machine ({', '.join(live) or 'none'}); "
            "name the owner's pid: attach(pid)"
        )
    return Store(live[0])


def _stores() -> list[tuple[int, str]]:
    found = []
    for name in os.listdir(SHM_DIR):
        if name.startswith("rigd-") and name.endswith("-store"):
            pid = name[len("rigd-") : -len("-store")]
            if pid.isdigit():
                found.append((int(pid), os.path.join(SHM_DIR, name)))
    return found


def remove_stale_stores() -> list[str]:
    """Remove stores whose owner process is dead; return their paths."""
    removed = []
    for pid, path in _stores():
        if not pid_alive(pid):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed
