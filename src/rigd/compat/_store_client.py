"""improv's store client (``self.client``) for ported actors: ``put``/``get`` by key.

improv's actors put each datum in a store (Plasma, LMDB, Redis) and send
its key down ``q_out``; the reader gets it back with ``client.get(key)``
(or ``getID``). Here the calls go to the run's store by key
(``rigd.storage.current_store()``, what ``rigd.store`` reaches: one file in
``/dev/shm`` per key, shared by every actor of the run, its entries removed
when the run ends), so a large array is read back as a view, not a copy.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from rigd._exceptions import ObjectNotFoundError
from rigd.storage import current_store

__all__ = ["ObjectNotFoundError", "StoreClient"]


class StoreClient:
    """improv's ``StoreInterface`` calls on the run's store (``current_store()``).

    Args:
        name: the actor's name, for messages.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name

    def put(self, obj: Any, object_name: str | None = None) -> str:
        """Keep ``obj`` under ``object_name`` (a new unique key when None); return the key.

        Raises:
            SerializationError: ``obj`` cannot be pickled (a ``TypeError``).
            ValueError: the key is empty or too long for the store.
            OSError: ``/dev/shm`` has too little free space (nothing is kept).
        """
        key = str(object_name) if object_name is not None else uuid.uuid4().hex
        current_store().put(key, obj)
        return key

    def get(self, object_name: str) -> Any:
        """The object kept under ``object_name`` (its numpy arrays read-only views).

        Raises:
            ObjectNotFoundError: nothing was put under it (in this run).
        """
        try:
            return current_store().get(str(object_name))
        except KeyError:
            raise ObjectNotFoundError(
                f"no object {object_name!r} in this run's store; put it first "
                "(self.client.put(obj, name))"
            ) from None

    def getID(self, obj_id: str) -> Any:  # noqa: N802 - improv's name
        """improv's ``getID``: the same as ``get``."""
        return self.get(obj_id)

    def getList(self, ids: list[str]) -> list[Any]:  # noqa: N802 - improv's name
        """The objects kept under each of ``ids``, in order."""
        return [self.get(i) for i in ids]

    def delete(self, object_name: str) -> None:
        """Forget ``object_name`` (nothing happens if it is not there)."""
        with contextlib.suppress(KeyError):
            current_store().delete(str(object_name))

    def keys(self) -> list[str]:
        """The keys kept now, sorted."""
        return current_store().keys()
