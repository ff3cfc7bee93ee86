"""A store by key, shared by a pipeline's actors and scripts on this machine.

improv's ``client.put(obj, "name")`` / ``client.get("name")`` as four
functions::

    import rigd

    rigd.store.put("rois", {"masks": masks, "ids": [3, 7]})  # any picklable object
    rois = rigd.store.get("rois")      # numpy arrays: read-only views, no copy
    rigd.store.keys()                  # ["rois"]
    rigd.store.delete("rois")
    rigd.store.put("model", weights, keep=True)  # outlives the run that put it

- Every entry lives in shared memory (``/dev/shm``); ``get`` maps it, so a
  large array is never copied by its readers (``get(key, copy=True)`` gives
  writable copies). ``put`` replaces an entry at once: readers see the old
  object or the new one, and keep what they hold.
- In a pipeline's actors these reach the pipeline's store (``RIGD_STORE``
  in their environment); elsewhere, the process's own store, so a script
  that runs a ``Pipeline`` shares its actors' entries. Another script
  reaches a daemon's store with ``rigd.store.attach()`` (or ``attach(pid)``),
  which returns a ``Store`` with the same four methods.
- Lifetimes: what an actor puts is removed when its run ends (the pipeline
  logs the keys it removes and keeps) unless put with ``keep=True``; the
  rest lasts as long as the store's owner (the daemon, or the script running
  the pipeline). Nothing is left in ``/dev/shm`` after the owner exits; a
  killed owner's store is removed at the next pipeline load or daemon start.

Errors: ``KeyError`` for a key with no entry; ``TypeError`` for a key that
is not a string or an object that cannot be pickled (``SerializationError``);
``ValueError`` for an empty or too long key; ``OSError`` when ``/dev/shm``
is too full (nothing is stored). See ``rigd.storage._store`` for the layout.
"""

from __future__ import annotations

from typing import Any

from rigd.storage import Store, attach, current_store

__all__ = ["Store", "attach", "delete", "get", "keys", "put"]


def put(key: str, obj: Any, *, keep: bool = False) -> None:
    """Store ``obj`` under ``key`` (see ``Store.put``)."""
    current_store().put(key, obj, keep=keep)


def get(key: str, *, copy: bool = False) -> Any:
    """The object stored under ``key``; arrays are views unless ``copy`` (see ``Store.get``)."""
    return current_store().get(key, copy=copy)


def keys() -> list[str]:
    """Every key in the store, sorted."""
    return current_store().keys()


def delete(key: str) -> None:
    """Remove ``key``'s entry (``KeyError`` if there is none)."""
    current_store().delete(key)
