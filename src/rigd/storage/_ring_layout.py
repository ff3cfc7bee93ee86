"""The frame ring's shared-memory layout: what each byte of a segment means.

A segment (a file in /dev/shm) holds, in order::

    header page   magic, layout version, shape, dtype, counters, futex words,
                  drop notes (frames the writer skipped, and why: ``_ring_notes``)
    readers       one record per reader slot (cursor, policy, pid, counters)
    slot meta     per slot: sequence, frame id, timestamp, bytes, commit time
    slots         page-aligned frames (registrable with cudaHostRegister)

Frame ``seq`` (0, 1, 2, ...) lives in slot ``seq % slot_count``. A slot's
meta ``seq`` word is ``seq + 1`` once committed, 0 when empty and
``WRITING`` while the writer fills it: a seqlock, so a reader can tell
whether the frame it holds was overwritten. The writer fills the slot, then
stores the meta (``seq`` last), then advances ``head``. On x86-64 aligned
8-byte stores are atomic and stores are seen in program order (TSO), which
is all this protocol needs.

A change to any structure here is a new ``LAYOUT_VERSION``: a process of
another version refuses the segment (``RingLayoutError``) instead of
misreading it.
"""

from __future__ import annotations

import ctypes
import mmap
from dataclasses import dataclass
from enum import Enum
from typing import Any

import numpy as np

MAGIC = b"RIGDRING"
LAYOUT_VERSION = 3
MAX_DIMS = 8
MAX_READERS = 64
PAGE = mmap.PAGESIZE
#: A slot meta ``seq`` word while the writer fills the slot.
WRITING = (1 << 64) - 1
#: Wake-up latencies each reader record keeps (the newest, round robin).
SAMPLES = 64
#: Drop notes the header keeps (the newest, round robin), and a reason's bytes.
NOTES = 64
NOTE_REASON_BYTES = 24


class ReaderPolicy(Enum):
    """How a reader shares the ring with the writer."""

    LOSSLESS = 0
    LATEST = 1


class ReaderState:
    """A reader record's ``state`` word."""

    FREE = 0
    ACTIVE = 1
    LOST = 2


class NoteRecord(ctypes.Structure):
    """One drop note: ``count`` frame ids from ``first_id`` the writer skipped, and why."""

    _fields_ = [
        ("first_id", ctypes.c_uint64),
        ("count", ctypes.c_uint64),
        ("reason", ctypes.c_char * NOTE_REASON_BYTES),
    ]


class Header(ctypes.Structure):
    """The segment's first page."""

    _fields_ = [
        ("magic", ctypes.c_char * 8),
        ("version", ctypes.c_uint32),
        ("slot_count", ctypes.c_uint32),
        ("max_readers", ctypes.c_uint32),
        ("ndim", ctypes.c_uint32),
        ("shape", ctypes.c_uint64 * MAX_DIMS),
        ("dtype", ctypes.c_char * 32),
        ("frame_nbytes", ctypes.c_uint64),
        ("slot_stride", ctypes.c_uint64),
        ("readers_offset", ctypes.c_uint64),
        ("meta_offset", ctypes.c_uint64),
        ("slots_offset", ctypes.c_uint64),
        ("owner_pid", ctypes.c_int64),
        ("writer_pid", ctypes.c_int64),
        ("closed", ctypes.c_uint64),
        ("head", ctypes.c_uint64),
        ("writer_wait_ns", ctypes.c_uint64),
        ("writer_waits", ctypes.c_uint64),
        ("readers_lost", ctypes.c_uint64),
        ("writer_waiting", ctypes.c_uint64),
        # One byte per reader, set while it sleeps: the writer tests 8 readers
        # with one 8-byte load before deciding whether to pay for a wake.
        ("waiting", ctypes.c_uint8 * MAX_READERS),
        # Futex words, each on its own cache line.
        ("data_futex", ctypes.c_uint32),
        ("_pad_data", ctypes.c_uint32 * 15),
        ("space_futex", ctypes.c_uint32),
        ("_pad_space", ctypes.c_uint32 * 15),
        # Announcements: ``announced`` is ``seq + 1`` once the writer has said
        # frame ``seq`` is on its way; low-latency readers sleep on the
        # announce futex (flagged in ``announce_waiting``) and spin from an
        # announcement to the commit, so their wake-up overlaps the writer's
        # work on the frame.
        ("announced", ctypes.c_uint64),
        ("announce_waiting", ctypes.c_uint8 * MAX_READERS),
        ("announce_futex", ctypes.c_uint32),
        ("_pad_announce", ctypes.c_uint32 * 15),
        # Frames the writer dropped because the ring was full (a camera is
        # never held back by its readers: ``RingWriter.skip``); each also in a note.
        ("writer_skips", ctypes.c_uint64),
        # Drop notes (``_ring_notes``): ``notes_written`` counts every note;
        # note ``k`` is in ``notes[k % NOTES]``.
        ("notes_written", ctypes.c_uint64),
        ("notes", NoteRecord * NOTES),
    ]


if ctypes.sizeof(Header) > PAGE:
    raise RuntimeError(f"the ring header ({ctypes.sizeof(Header)} bytes) outgrew its page")


class ReaderRecord(ctypes.Structure):
    """One reader's slot in the segment: its cursor, policy and counters."""

    _fields_ = [
        ("state", ctypes.c_uint32),
        ("policy", ctypes.c_uint32),
        ("pid", ctypes.c_int64),
        ("cursor", ctypes.c_uint64),
        ("waiting", ctypes.c_uint64),
        ("frames_read", ctypes.c_uint64),
        ("frames_dropped", ctypes.c_uint64),
        ("frames_torn", ctypes.c_uint64),
        ("wakes", ctypes.c_uint64),
        ("samples", ctypes.c_uint32 * SAMPLES),
    ]


class SlotMeta(ctypes.Structure):
    """One slot's stamps; ``seq`` is the seqlock word (see the module docstring)."""

    _fields_ = [
        ("seq", ctypes.c_uint64),
        ("frame_id", ctypes.c_uint64),
        ("timestamp_ns", ctypes.c_int64),
        ("nbytes", ctypes.c_uint64),
        ("commit_ns", ctypes.c_int64),
        ("_pad", ctypes.c_uint64 * 3),
    ]


def round_up(n: int, to: int) -> int:
    return -(-n // to) * to


@dataclass(frozen=True, slots=True)
class SegmentLayout:
    """Where each part of a segment of these frames starts, in bytes."""

    frame_nbytes: int
    slot_stride: int
    readers_offset: int
    meta_offset: int
    slots_offset: int
    size: int

    @classmethod
    def plan(
        cls, shape: tuple[int, ...], dtype: Any, slot_count: int, max_readers: int
    ) -> SegmentLayout:
        """The layout of a segment for ``slot_count`` frames of ``shape`` and ``dtype``."""
        frame_nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        stride = round_up(frame_nbytes, PAGE)
        readers_offset = PAGE
        meta_offset = readers_offset + max_readers * ctypes.sizeof(ReaderRecord)
        slots_offset = round_up(meta_offset + slot_count * ctypes.sizeof(SlotMeta), PAGE)
        return cls(
            frame_nbytes=frame_nbytes,
            slot_stride=stride,
            readers_offset=readers_offset,
            meta_offset=meta_offset,
            slots_offset=slots_offset,
            size=slots_offset + slot_count * stride,
        )
