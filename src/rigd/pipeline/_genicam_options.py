"""GenICamCamera's settings and bookkeeping that need no Aravis: what it takes,
what it records, and how camera frame ids become rigd's.

``rigd.pipeline._genicam`` (the one module importing gi and Aravis) drives
the camera; this module holds what can be checked and tested without one:
the pixel formats rigd takes, the ``frame_info`` columns and status codes,
the options' checks (run at load, before any camera is opened), the device
list's records, and the unwrapping of GigE Vision's 16-bit block ids.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "FRAME_INFO_FIELDS",
    "FRAME_INFO_UNITS",
    "ON_LOST",
    "PIXEL_FORMATS",
    "STATUS_CODES",
    "CameraInfo",
    "FrameIds",
    "check_camera_options",
    "loopback",
    "pair",
    "put_info",
]

FrameSpec = tuple[tuple[int, ...], str]

#: Pixel formats rigd takes, as (dtype, samples per pixel). Packed formats
#: (Mono12Packed, ...) would need unpacking; they are refused.
PIXEL_FORMATS: dict[str, tuple[str, int]] = {
    "Mono8": ("uint8", 1),
    "Mono10": ("uint16", 1),
    "Mono12": ("uint16", 1),
    "Mono14": ("uint16", 1),
    "Mono16": ("uint16", 1),
    "BayerRG8": ("uint8", 1),
    "BayerGR8": ("uint8", 1),
    "BayerGB8": ("uint8", 1),
    "BayerBG8": ("uint8", 1),
    "BayerRG16": ("uint16", 1),
    "BayerBG16": ("uint16", 1),
    "RGB8": ("uint8", 3),
    "BGR8": ("uint8", 3),
}

#: ``frame_info`` columns, per frame (uint64).
FRAME_INFO_FIELDS = ("camera_frame_id", "hardware_timestamp_ns", "driver_timestamp_ns", "status")
#: What each ``frame_info`` column holds: (units, long name), as the run file
#: stores them (``units``/``long_name`` of the stream's field datasets).
FRAME_INFO_UNITS: dict[str, tuple[str, str]] = {
    "camera_frame_id": (
        "",
        "the camera's frame id (GigE Vision block id: 16 bits, wraps at 65535)",
    ),
    "hardware_timestamp_ns": (
        "ns",
        "the camera's timestamp (Aravis: its ticks in ns by GevTimestampTickFrequency)",
    ),
    "driver_timestamp_ns": (
        "ns",
        "host time the driver received the frame (ns since the Unix epoch)",
    ),
    "status": ("", "0 delivered; otherwise the drop's reason code (STATUS_CODES)"),
}
#: ``frame_info`` status codes: 0 delivered, others a drop.
STATUS_CODES = {
    "delivered": 0,
    "missing_packets": 1,
    "timeout": 2,
    "size_mismatch": 3,
    "wrong_packet_id": 4,
    "aborted": 5,
    "cleared": 6,
    "unknown": 7,
    "ring_full": 8,
    "underrun": 9,
}

GV_BLOCK_IDS = 65535  # GigE Vision 1.x block ids: 1 to 65535, then 1 again
ON_LOST = ("end", "wait")


@dataclass(frozen=True)
class CameraInfo:
    """One GenICam device found: what ``rigd cameras`` and ``GET /v1/cameras`` list."""

    id: str
    vendor: str
    model: str
    serial: str
    interface: str
    address: str
    physical_id: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def pair(value: Any, name: str) -> tuple[int, int] | None:
    """``value`` as ``(horizontal, vertical)``: a number stands for both.

    Raises:
        ValueError: neither a whole number nor a list of two.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if (
        isinstance(value, list | tuple)
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
    ):
        return int(value[0]), int(value[1])
    raise ValueError(f"{name} must be a number or [horizontal, vertical], got {value!r}")


def check_camera_options(options: Mapping[str, Any]) -> None:
    """Refuse options of the wrong type or range, before any camera is opened.

    Raises:
        ValueError: naming the option, what it must be, and what it was.
    """
    fmt = options.get("pixel_format")
    if fmt is not None and fmt not in PIXEL_FORMATS:
        raise ValueError(
            f"pixel_format {fmt!r} is not one rigd takes; use one of {sorted(PIXEL_FORMATS)}"
        )
    for name in (
        "offset_x",
        "offset_y",
        "width",
        "height",
        "packet_size",
        "packet_delay_ns",
        "socket_buffer_bytes",
    ):
        value = options.get(name)
        if value is not None and (not isinstance(value, int) or value < 0):
            raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
    pair(options.get("binning"), "binning")
    for name in ("exposure_us", "gain", "frame_rate"):
        value = options.get(name)
        if value is not None and not isinstance(value, int | float):
            raise ValueError(f"{name} must be a number, got {value!r}")
    trigger = options.get("trigger", "off")
    if not isinstance(trigger, str) or not trigger:
        raise ValueError(
            f"trigger must be 'off', 'software' or a line name (Line0), got {trigger!r}"
        )
    n_buffers = options.get("n_buffers", 16)
    if not isinstance(n_buffers, int) or n_buffers < 2:
        raise ValueError(f"n_buffers must be a whole number >= 2, got {n_buffers!r}")
    if options.get("on_lost", "end") not in ON_LOST:
        raise ValueError(f"on_lost must be 'end' or 'wait', got {options.get('on_lost')!r}")
    n_frames = options.get("n_frames")
    if n_frames is not None and (not isinstance(n_frames, int) or n_frames < 0):
        raise ValueError(f"n_frames must be >= 0 (or null for unlimited), got {n_frames!r}")


class FrameIds:
    """rigd's frame ids for a camera's raw ids: from ``base``, unwrapped, never repeating.

    GigE Vision 1.x block ids are 16 bits and skip 0 (65535 is followed by
    1); USB3 Vision and extended GigE ids are 64 bits and only grow. A raw id
    that does not advance counts as one frame on.

    Args:
        gigevision: the camera is a GigE Vision device (its ids may wrap).
        base: rigd's id of the first frame.
    """

    def __init__(self, gigevision: bool, base: int) -> None:
        self.gigevision = gigevision
        self.restart(base)

    def restart(self, base: int) -> None:
        """Count again from ``base``: the camera came back, its ids start anew."""
        self._base = base
        self._last_raw: int | None = None
        self._unwrapped = 0
        #: rigd's id of the last frame counted (``base - 1`` before the first).
        self.last_id = base - 1

    @property
    def started(self) -> bool:
        """Whether a frame was counted since the start (or the last restart)."""
        return self._last_raw is not None

    def take(self, n: int) -> int:
        """Give ``n`` ids to frames without a raw id to trust (buffers the
        driver could not fill) before the first frame, or at the end; return
        the first. Between frames such buffers take the ids skipped instead."""
        first = self.last_id + 1
        self.last_id += n
        if self._last_raw is None:
            self._base += n
        return first

    def unwrap(self, raw: int) -> tuple[int, int]:
        """``(rigd's id, ids skipped)`` for the camera's ``raw`` id.

        The ids skipped are frames the driver never handed over (0 for the
        first frame after a start or a restart).
        """
        last = self._last_raw
        if last is None:
            step = 0
        elif self.gigevision and raw <= GV_BLOCK_IDS and last <= GV_BLOCK_IDS:
            step = (raw - last) % GV_BLOCK_IDS or GV_BLOCK_IDS
        else:
            step = max(1, raw - last)
        self._last_raw = raw
        self._unwrapped += step
        frame_id = self._base + self._unwrapped
        skipped = frame_id - (self.last_id + 1) if last is not None else 0
        self.last_id = frame_id
        return frame_id, skipped


def put_info(writer: Any, frame_id: int, row: tuple[int, int, int, int]) -> None:
    """Write one ``frame_info`` row, or nothing if its ring is full.

    A reader of ``frame_info`` a whole ring behind must never hold the camera
    back: the row is dropped and noted on the ring as ``ring_full``.
    """
    try:
        with writer.slot(frame_id=frame_id, timeout=0) as view:
            view[:] = row
    except TimeoutError:
        writer.note_dropped(frame_id, 1, "ring_full")


def loopback(address: str) -> bool:
    """Whether ``address`` is a loopback IP address (the simulator's, say)."""
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
