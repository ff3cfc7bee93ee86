"""The console's live view: the newest frame of a link, downscaled and encoded.

A ``PreviewTap`` is a ``latest`` reader of the link's ring that only ever
reads with ``get_at`` (the newest committed frame): it never moves a
cursor, never holds the writer back and never counts a skipped frame as
dropped, so a browser watching cannot slow or disturb the pipeline. The
frame is downscaled by striding (every k-th pixel, a copy of at most
``max_size``² pixels), mapped to 8 bits with the contrast asked for, and
encoded with Pillow (JPEG, PNG or WebP); the false-colour map is the
browser's.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rigd.storage import FrameRing, RingReader

__all__ = ["FORMATS", "PreviewFrame", "PreviewTap", "render"]

#: The encodings the browser may ask for: Pillow's format name and MIME type.
FORMATS = {
    "jpeg": ("JPEG", "image/jpeg"),
    "png": ("PNG", "image/png"),
    "webp": ("WEBP", "image/webp"),
}
_BINS = 64


@dataclass(frozen=True)
class PreviewFrame:
    """One frame taken from the ring: a downscaled copy and its stamps."""

    frame_id: int
    seq: int
    timestamp_ns: int
    shape: tuple[int, ...]  # the full frame's
    step: int  # every step-th pixel kept, in both axes
    pixels: np.ndarray[Any, Any]  # 2-D, the frame's dtype
    cursor_value: float | None  # the full frame's pixel under the cursor


class PreviewTap:
    """A ``latest`` tap on one ring (its segment in /dev/shm), for one viewer.

    Raises (constructor):
        FileNotFoundError: the ring is gone (the run ended).
        RuntimeError: every reader slot of the ring is taken.
    """

    def __init__(self, segment: str) -> None:
        self.segment = segment
        self._ring = FrameRing.attach(segment)
        try:
            self._reader: RingReader = self._ring.reader("latest")
        except BaseException:
            self._ring.close()
            raise
        self.shape = self._ring.shape
        self.dtype = self._ring.dtype

    @property
    def committed(self) -> int:
        """Frames the writer has committed so far."""
        return self._reader.committed

    def take(self, max_size: int, cursor: tuple[int, int] | None = None) -> PreviewFrame | None:
        """The newest frame, downscaled so that neither side exceeds ``max_size``;
        None if there is none yet or the writer overwrote it while it was copied
        (the next call takes the next one)."""
        head = self._reader.committed
        if head == 0:
            return None
        try:
            frame = self._reader.get_at(head - 1)
        except LookupError:
            return None
        array = frame.array
        image = array if array.ndim == 2 else array.reshape(array.shape[0], -1)
        if array.ndim == 3 and array.shape[-1] in (3, 4):
            image = array[..., 0]
        step = max(1, math.ceil(max(image.shape) / max(1, max_size)))
        pixels = np.array(image[::step, ::step])
        value: float | None = None
        if cursor is not None:
            x, y = cursor
            if 0 <= y < image.shape[0] and 0 <= x < image.shape[1]:
                value = float(image[y, x])
        taken = PreviewFrame(
            frame.frame_id, frame.seq, frame.timestamp_ns, tuple(array.shape), step, pixels, value
        )
        if not self._reader.release(frame):
            return None
        return taken

    def close(self) -> None:
        """Give the reader slot back and detach from the ring."""
        self._reader.close()
        self._ring.close()


def render(
    taken: PreviewFrame, contrast: tuple[float, float] | None, fmt: str = "jpeg"
) -> tuple[dict[str, Any], bytes]:
    """The frame's description (JSON-able) and its 8-bit image encoded as ``fmt``.

    ``contrast`` None is automatic (the 0.5th to 99.5th percentile); else
    ``(min, max)`` in the frame's units map to 0 and 255. The histogram (64
    bins) spans the downscaled frame's minimum to maximum.

    Raises:
        ValueError: an unknown ``fmt``.
    """
    from PIL import Image

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one the preview encodes; use {sorted(FORMATS)}")
    pixels = taken.pixels.astype(np.float32, copy=False)
    finite = pixels[np.isfinite(pixels)] if pixels.dtype.kind == "f" else pixels
    data_min = float(finite.min()) if finite.size else 0.0
    data_max = float(finite.max()) if finite.size else 0.0
    if contrast is None:
        low, high = (
            (float(v) for v in np.percentile(finite, (0.5, 99.5))) if finite.size else (0.0, 1.0)
        )
    else:
        low, high = contrast
    if high <= low:
        high = low + 1.0
    scaled = np.clip((pixels - low) * (255.0 / (high - low)), 0, 255)
    gray = np.nan_to_num(scaled).astype(np.uint8)
    counts, _ = np.histogram(finite, bins=_BINS, range=(data_min, max(data_max, data_min + 1)))
    buffer = io.BytesIO()
    name, mime = FORMATS[fmt]
    options: dict[str, Any] = {"quality": 85} if name in ("JPEG", "WEBP") else {}
    Image.fromarray(gray, "L").save(buffer, name, **options)
    meta = {
        "type": "frame",
        "frame_id": taken.frame_id,
        "seq": taken.seq,
        "timestamp_ns": taken.timestamp_ns,
        "shape": list(taken.shape),
        "step": taken.step,
        "width": int(gray.shape[1]),
        "height": int(gray.shape[0]),
        "contrast": [low, high],
        "histogram": {"min": data_min, "max": data_max, "counts": counts.tolist()},
        "cursor_value": taken.cursor_value,
        "mime": mime,
        "sent_unix_ms": time.time() * 1e3,
    }
    return meta, buffer.getvalue()
