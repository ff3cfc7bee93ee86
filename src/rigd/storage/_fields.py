"""Named fields of a records stream: what each column of an N x k stream means."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["RecordField", "record_fields"]


@dataclass(frozen=True)
class RecordField:
    """One column of a records stream (``FrameStats``' ``mean``, a ROI's trace).

    A run file stores each field as a dataset of its own, with ``units`` and
    ``long_name`` attributes, in the stream's NeXus ``NXdata`` group.
    """

    name: str
    #: As NeXus and UDUNITS write them: ``"counts"``, ``"pixel"``, ``"s"``; ``""``: none.
    units: str = ""
    long_name: str = ""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(
                f"field name {self.name!r} cannot name an HDF5 dataset; use letters, digits "
                "and underscores"
            )


def record_fields(fields: Iterable[RecordField | str]) -> tuple[RecordField, ...]:
    """Fields from ``RecordField``s or plain names; names must be unique.

    Raises:
        ValueError: a name twice, or one that cannot name a dataset.
    """
    out = tuple(f if isinstance(f, RecordField) else RecordField(str(f)) for f in fields)
    names = [f.name for f in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"field names must be unique; {twice} appear more than once")
    return out
