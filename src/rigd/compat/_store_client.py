"""improv's store client (``self.client``) for ported actors: ``put``/``get`` by key.

improv's actors put each datum in a store (Plasma, LMDB, Redis) and send
its key down ``q_out``; the reader gets it back with ``client.get(key)``
(or ``getID``). Here the objects of a run are kept in files under the run's
private directory (``status_dir``, removed when the run is torn down), one
pickle (protocol 5) per key, shared by every actor of the run.

Interim: this adapter is to be pointed at ``rigd.store`` (the store by key,
shared memory for large arrays, listed and cleared at run end) once that is
in the package; the calls below keep their meaning.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

__all__ = ["ObjectNotFoundError", "StoreClient"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class ObjectNotFoundError(KeyError):
    """Raised by ``get`` for a key nothing was put under (improv's name for it)."""


class StoreClient:
    """improv's ``StoreInterface`` calls on one run's objects.

    Args:
        directory: where the run's objects are kept (shared by its actors).
        name: the actor's name, for messages.
    """

    def __init__(self, directory: str | Path, name: str = "") -> None:
        self.directory = Path(directory)
        self.name = name

    def put(self, obj: Any, object_name: str | None = None) -> str:
        """Keep ``obj`` under ``object_name`` (a new unique key when None); return the key.

        Raises:
            pickle.PicklingError, TypeError: ``obj`` cannot be pickled.
        """
        key = str(object_name) if object_name is not None else uuid.uuid4().hex
        data = pickle.dumps(obj, protocol=5)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, self._path(key))  # readers see the whole object or none
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return key

    def get(self, object_name: str) -> Any:
        """The object kept under ``object_name``.

        Raises:
            ObjectNotFoundError: nothing was put under it (in this run).
        """
        try:
            data = self._path(str(object_name)).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(
                f"no object {object_name!r} in this run's store; put it first "
                "(self.client.put(obj, name))"
            ) from None
        return pickle.loads(data)

    def getID(self, obj_id: str) -> Any:  # noqa: N802 - improv's name
        """improv's ``getID``: the same as ``get``."""
        return self.get(obj_id)

    def getList(self, ids: list[str]) -> list[Any]:  # noqa: N802 - improv's name
        """The objects kept under each of ``ids``, in order."""
        return [self.get(i) for i in ids]

    def delete(self, object_name: str) -> None:
        """Forget ``object_name`` (nothing happens if it is not there)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(str(object_name)))

    def keys(self) -> list[str]:
        """The keys kept now (as files name them)."""
        return sorted(p.name for p in self.directory.iterdir() if not p.name.startswith("."))

    def _path(self, key: str) -> Path:
        # Any key is allowed: one that is not a plain file name is encoded.
        safe = _SAFE.sub("_", key)
        if safe != key or key in ("", ".", ".."):
            safe = f"{safe[:64]}~{hashlib.sha256(key.encode()).hexdigest()[:32]}"
        return self.directory / safe
