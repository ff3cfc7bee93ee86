"""The cameras this host sees: what ``rigd cameras`` prints and ``GET /v1/cameras`` serves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rigd._exceptions import CamerasUnavailableError

__all__ = ["CamerasUnavailableError", "camera_list", "format_camera_report"]

_COLUMNS = ("id", "vendor", "model", "serial", "interface", "address")


def camera_list() -> list[dict[str, str]]:
    """Every GenICam device found now, as plain dicts (id, vendor, model, serial, ...).

    Raises:
        CamerasUnavailableError: the GenICam library is not installed (the
            message says what to install).
    """
    try:
        from rigd.pipeline import list_cameras

        cameras = list_cameras()
    except ImportError as exc:
        raise CamerasUnavailableError(str(exc)) from exc
    return [camera.as_dict() for camera in cameras]


def format_camera_report(cameras: Sequence[Mapping[str, Any]]) -> str:
    """A table of the cameras, or a line saying none was found."""
    if not cameras:
        return (
            "no GenICam camera found (GigE Vision: on this host's network and subnet; "
            "USB3 Vision: plugged in, with its udev rule)"
        )
    rows = [[str(c.get(k, "")) for k in _COLUMNS] for c in cameras]
    widths = [max(len(k), *(len(r[i]) for r in rows)) for i, k in enumerate(_COLUMNS)]
    lines = ["  ".join(k.upper().ljust(w) for k, w in zip(_COLUMNS, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)
