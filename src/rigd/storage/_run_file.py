"""A run file's objects, made when a run starts and found again when it resumes.

``lay_out_run`` writes the root attributes (rigd's own, then the run's
metadata), the NeXus description and every stream's group and table,
before the first frame; ``reopen_run`` finds them in a repaired file so a
restarted recorder records on after its frames.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from typing import Any

from rigd._version import __version__
from rigd.storage import _nexus
from rigd.storage._codecs import Codec
from rigd.storage._h5file import (
    HDF5_VERSION,
    create_stream_group,
    create_table,
    stream_groups,
    table_datasets,
)
from rigd.storage._run_layout import StreamSpec
from rigd.storage._run_metadata import utc_now_iso
from rigd.storage._stream_state import StreamState, TableRows

RunObjects = tuple[dict[str, StreamState], dict[str, TableRows]]


def lay_out_run(
    f: Any,
    file_name: str,
    streams: Sequence[StreamSpec],
    codecs: Mapping[str, Codec | None],
    tables: Mapping[str, Any],
    *,
    run_id: str,
    pipeline: str,
    metadata: Mapping[str, Any],
) -> RunObjects:
    """Create every object of a new run file ``f``; ``metadata`` is checked
    already (``check_metadata``). Returns the streams' and tables' states."""
    attrs = f.attrs
    start_time = utc_now_iso()
    attrs["rigd_version"] = __version__
    attrs["run_id"] = run_id
    attrs["start_time"] = start_time
    attrs["host"] = socket.gethostname()
    attrs["pipeline"] = pipeline
    attrs["run_state"] = "recording"
    for key, value in metadata.items():
        attrs[key] = value
    _nexus.describe_root(
        f, file_name=file_name, start_time=start_time, version=__version__, hdf5=HDF5_VERSION
    )
    images = [s.name for s in streams if not s.fields]
    entry = _nexus.make_entry(
        f,
        run_id=run_id,
        start_time=start_time,
        version=__version__,
        default=(images or [s.name for s in streams])[0],
    )
    states = {}
    for s in streams:
        group = create_stream_group(f, s, codecs[s.name])
        _nexus.describe_records(group, units=s.units, fields=s.fields)
        state = StreamState(s, group, codecs[s.name])
        state.columns = _nexus.link_stream(entry, group, s.fields)
        states[s.name] = state
    rows = {name: TableRows(create_table(f, name, dtype)) for name, dtype in tables.items()}
    return states, rows


def reopen_run(f: Any, reason: str) -> RunObjects:
    """The streams and tables of a repaired run file ``f``, marked
    ``recording`` again; the next gap in each stream's ids is ``reason``."""
    states = {
        group.name.lstrip("/"): StreamState.reopen(f, group, reason) for group in stream_groups(f)
    }
    rows = {name: TableRows(dataset) for name, dataset in table_datasets(f).items()}
    f.attrs["run_state"] = "recording"
    for name in ("frames_recorded", "frames_dropped"):
        for group in stream_groups(f):
            if name in group.attrs:
                del group.attrs[name]
    return states, rows
