"""A run file's tables of rows: appended and updated under the writer's lock.

The tables (``RunWriter(tables=...)``: root datasets of rows by name and
compound numpy dtype) take rows here; the writer's flush writes the pending
rows and updates (``TableRows.flush``, ``_stream_state``), visible to SWMR
readers from then on. ``RunWriter`` (``_run_writer``) has these methods
from here.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from rigd.storage._stream_state import TableRows

__all__ = ["RunTables"]


class RunTables:
    """The tables' methods (a base of ``RunWriter``, which sets these)."""

    _lock: threading.Lock
    _tables: dict[str, TableRows]

    if TYPE_CHECKING:

        def _check_writable(self) -> None: ...

    def append_row(self, table: str, row: tuple[Any, ...]) -> int:
        """Append a row to a table (see ``tables``); return its index.

        Raises:
            KeyError: no such table.
            RecordingError: the recording stopped on a write error.
        """
        state = self._table(table)
        with self._lock:
            self._check_writable()
            state.pending.append(row)
            return state.count + len(state.pending) - 1

    def update_row(self, table: str, index: int, row: tuple[Any, ...]) -> None:
        """Replace row ``index`` of a table (one appended before).

        Raises:
            KeyError: no such table; IndexError: no such row.
        """
        state = self._table(table)
        with self._lock:
            self._check_writable()
            if not 0 <= index < state.count + len(state.pending):
                raise IndexError(f"table {table!r} has no row {index}")
            if index >= state.count:
                state.pending[index - state.count] = row
            else:
                state.updates[index] = row

    def _table(self, name: str) -> TableRows:
        try:
            return self._tables[name]
        except KeyError:
            raise KeyError(f"no table {name!r}; this run file has {sorted(self._tables)}") from None
