"""Pipeline actors that send records and messages, importable by path for the tests."""

from __future__ import annotations

import os
from typing import Any, ClassVar

import numpy as np

import rigd
from rigd import Actor

#: The records ``Events`` writes: a time, a row, a name (a structured dtype).
EVENT = np.dtype([("t_acq", "<f8"), ("row", "<i4"), ("name", "S8")])


def message(k: int) -> Any:
    """What ``Events`` sends as message ``k``: improv's kinds of objects."""
    return {
        "k": k,
        "rois": [(k, k + 1), (2 * k, 3)],
        "trace": np.arange(k, k + 50, dtype=np.float32),
        "stamp": (k * 0.5, (k, "row")),
    }


class Events(Actor):
    """A source of ``n`` records (one per step) and ``n`` messages beside them."""

    output_names = ("events", "objects")
    output_kinds: ClassVar[dict[str, str]] = {"objects": "messages"}
    max_message_bytes = 64 * 1024

    @classmethod
    def describe_outputs(cls, options: Any, inputs: Any) -> dict[str, Any]:
        return {"events": ((1,), EVENT)}

    def __init__(self, n: int = 50) -> None:
        self.n = n
        self.k = 0

    def run_step(self) -> None:
        if self.k >= self.n:
            self.finish()
            return
        record = np.zeros(1, EVENT)
        record["t_acq"] = self.k / 10
        record["row"] = self.k
        record["name"] = f"ev{self.k}".encode()
        self.outputs.events.put(record, frame_id=self.k)
        self.outputs.objects.put(message(self.k), frame_id=self.k)
        self.k += 1


class Relay(Actor):
    """Reads messages, checks their arrays are views of the slot, passes them on.

    Puts the last message's ``k`` in the store (the run's) and a summary
    that is kept (``keep=True``).
    """

    input_names = ("objects",)
    input_kinds: ClassVar[dict[str, str]] = {"objects": "messages"}
    output_names = ("out",)
    output_kinds: ClassVar[dict[str, str]] = {"out": "messages"}

    def __init__(self) -> None:
        self.copied: list[int] = []
        self.seen = 0

    def run_step(self) -> None:
        with self.inputs.objects.read(timeout=1.0) as msg:
            value = msg.value
            trace = value["trace"]
            start, size = self.inputs.objects._reader._seg.slot_memory()
            inside = start <= trace.ctypes.data < start + size
            if trace.flags.writeable or not inside:
                self.copied.append(value["k"])  # not a read-only view of the slot
            self.outputs.out.put(
                {"k": value["k"], "sum": float(trace.sum()), "stamp": value["stamp"]},
                frame_id=msg.frame_id,
            )
            k = value["k"]
        self.seen += 1
        rigd.store.put("last_k", k)
        rigd.store.put("summary", {"seen": self.seen, "trace": np.full(1000, k)}, keep=True)

    def copies(self) -> list[int]:
        return list(self.copied)

    def store_path(self) -> str:
        return os.environ.get("RIGD_STORE", "")


class FramesOnly(Actor):
    """An actor whose input takes frames (the default kind)."""

    input_names = ("frames",)

    def run_step(self) -> None:
        with self.inputs.frames.read(timeout=1.0):
            pass


class Oversize(Actor):
    """A source whose second message is larger than its link takes."""

    output_names = ("objects",)
    output_kinds: ClassVar[dict[str, str]] = {"objects": "messages"}
    max_message_bytes = 4096

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.k = 0

    def run_step(self) -> None:
        size = 10 if self.k != 1 else 100_000
        try:
            self.outputs.objects.put(np.zeros(size, np.uint8), frame_id=self.k)
        except ValueError as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        try:
            self.outputs.objects.put(lambda: None, frame_id=self.k)
        except TypeError as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self.k += 1
        if self.k == 3:
            self.finish()

    def problems(self) -> list[str]:
        return list(self.errors)
