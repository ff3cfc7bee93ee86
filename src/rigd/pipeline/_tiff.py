"""TiffStack: a stored TIFF stack replayed as a source (the one module importing tifffile).

Multi-page TIFF, OME-TIFF and ScanImage files: the frames of one series, in
page order, at a given rate or flat out. Where the file allows it (pages
stored uncompressed and contiguous) the stack is memory-mapped and each frame
is copied once, from the page cache into the ring's slot; otherwise each page
is decoded straight into the slot.

ScanImage stores its channels interleaved, page by page (channel 0 of frame
0, channel 1 of frame 0, channel 0 of frame 1, ...). ``channels`` says how
many are interleaved (read from the ScanImage metadata when the file has it);
a frame is then one time point, ``channels x height x width``, or one channel
of it with ``channel``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import tifffile

from rigd.actors import Actor

__all__ = ["TiffStack", "tiff_layout"]

FrameSpec = tuple[tuple[int, ...], str]

# Legacy ScanImage (3.x): "state.acq.numberOfChannelsSave=2"; ScanImage
# 2015 and later: "SI.hChannels.channelSave = [1;2]".
_SI_LEGACY = re.compile(r"state\.acq\.numberOfChannelsSave\s*=\s*(\d+)")
_SI_SAVE = re.compile(r"SI\d*\.hChannels\.channelSave\s*=\s*\[?([\d;\s]+)\]?")


class TiffLayout:
    """Where a stack's frames are: the series, frame count and shape, channels."""

    def __init__(
        self, tif: tifffile.TiffFile, path: str, series: int, channels: int | None
    ) -> None:
        if not 0 <= series < len(tif.series):
            raise ValueError(
                f"{path}: series {series} does not exist; the file has {len(tif.series)} "
                f"(0 to {len(tif.series) - 1})"
            )
        s = tif.series[series]
        self.series = series
        self.page_shape = tuple(int(n) for n in s.keyframe.shape)
        self.dtype = np.dtype(s.dtype)
        self.pages = len(s.pages)
        if channels is None:
            channels = _scanimage_channels(tif) or _axis_channels(s.axes, s.shape)
        self.channels = int(channels)
        if self.channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels!r}")
        if self.pages % self.channels:
            raise ValueError(
                f"{path}: {self.pages} pages do not split into {self.channels} interleaved "
                "channels; set channels to the number the file was saved with"
            )
        self.frames = self.pages // self.channels


def _scanimage_channels(tif: tifffile.TiffFile) -> int | None:
    page = tif.pages.first
    if not page.is_scanimage:
        return None
    text = page.description + "\n" + page.software
    found = _SI_LEGACY.search(text)
    if found:
        return int(found.group(1))
    found = _SI_SAVE.search(text)
    if found:
        return len([c for c in re.split(r"[;\s]+", found.group(1)) if c])
    meta = tif.scanimage_metadata or {}
    saved = meta.get("FrameData", {}).get("SI.hChannels.channelSave")
    if isinstance(saved, list):
        return len(saved)
    if isinstance(saved, int):
        return 1
    return None


def _axis_channels(axes: str, shape: tuple[int, ...]) -> int:
    # Channels interleaved page by page: C right before the page's Y and X
    # (TCYX). Channel-major files (CTYX) are a run of frames per channel.
    if len(axes) >= 3 and axes[-3] == "C" and axes[-2:] == "YX":
        return int(shape[-3])
    return 1


def tiff_layout(path: str, series: int = 0, channels: int | None = None) -> TiffLayout:
    """Open ``path`` and say where its frames are.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a TIFF file, no such series, channels that do not fit.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"TIFF stack {path!r} does not exist; give the path of a .tif file")
    try:
        with tifffile.TiffFile(path) as tif:
            return TiffLayout(tif, path, series, channels)
    except tifffile.TiffFileError as exc:
        raise ValueError(f"{path!r} is not a TIFF file tifffile can read: {exc}") from None


def _frame_shape(layout: TiffLayout, channel: int | None) -> tuple[int, ...]:
    if layout.channels > 1 and channel is None:
        return (layout.channels, *layout.page_shape)
    return layout.page_shape


class TiffStack(Actor):
    """Replays a TIFF stack into ``frames``, bit for bit.

    Args:
        path: the TIFF file (multi-page, OME-TIFF or ScanImage).
        fps: frames per second; ``None`` or 0 for flat out (as fast as the
            readers take them).
        series: which series of the file (OME-TIFF files may hold several).
        channels: how many channels are interleaved page by page
            (``None``: from the ScanImage metadata or the series' axes, else 1).
        channel: keep only this channel (``None``: a frame holds all channels).
        loop: start over at the end instead of ending.

    Frame ids count from 0 (and on across loops); timestamps are the host's
    time when the frame is written.
    """

    output_names = ("frames",)
    #: The daemon confines ``path`` to its data directory (a file there).
    place_options: ClassVar[dict[str, str]] = {"path": "data_file"}

    def __init__(
        self,
        path: str,
        fps: float | None = None,
        series: int = 0,
        channels: int | None = None,
        channel: int | None = None,
        loop: bool = False,
    ) -> None:
        _check_rate(fps)
        self.path = str(path)
        self.fps = float(fps) if fps else None
        self.series = series
        self.channels = channels
        self.channel = channel
        self.loop = loop
        self.frames_played = 0
        self.memory_mapped = False

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, Any]
    ) -> dict[str, FrameSpec]:
        if "path" not in options:
            raise ValueError("TiffStack needs a path option: the TIFF file to replay")
        _check_rate(options.get("fps"))
        layout = tiff_layout(
            str(options["path"]), int(options.get("series", 0)), options.get("channels")
        )
        channel = options.get("channel")
        _check_channel(channel, layout)
        return {"frames": (_frame_shape(layout, channel), layout.dtype.str)}

    def setup(self) -> None:
        layout = tiff_layout(self.path, self.series, self.channels)
        _check_channel(self.channel, layout)
        self._layout = layout
        self._tif = tifffile.TiffFile(self.path)
        self._pages = self._tif.series[self.series].pages
        self._stack: np.ndarray[Any, Any] | None = None
        try:
            # Contiguous and uncompressed: map it, frames come from the page cache.
            # A plain ndarray view of the map: indexing an ``np.memmap`` runs
            # Python code (``__getitem__``, ``__array_finalize__``) per frame.
            mapped = tifffile.memmap(self.path, series=self.series, mode="r")
            self._stack = mapped.reshape(layout.pages, *layout.page_shape).view(np.ndarray)
            self.memory_mapped = True
        except ValueError:
            self._stack = None
        self._index = 0
        self._writer = self.outputs.frames
        previous = self._writer.previous
        if previous is not None and self.frames_played == 0:
            # Restarted after a crash: go on after the last frame the ring has
            # (a file is not a camera: nothing was missed while it was down).
            self.frames_played = previous[0] + 1
            self._index = self.frames_played % layout.frames if self.loop else self.frames_played
        self._t0 = time.monotonic()
        self._first = self.frames_played
        # When the first and the last frame were committed (``status``).
        self._first_s: float | None = None
        self._last_s = 0.0

    def resume(self) -> None:
        """Restart the pacing clock: the next page is due now, then one per ``1/fps`` s.

        The paused time is not made up on resume (no burst of pages at once).
        """
        self._t0 = time.monotonic()
        self._first = self.frames_played

    def run_step(self) -> None:
        layout = self._layout
        if self._index >= layout.frames:
            if not self.loop:
                self.finish()
                return
            self._index = 0
        k = self.frames_played
        if self.fps:
            delay = self._t0 + (k - self._first) / self.fps - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        c = layout.channels
        first = self._index * c
        writer = self._writer
        if self._stack is not None and (c == 1 or self.channel is not None):
            # Mapped: one copy, from the page cache into the slot (``put``:
            # no context manager, the cheapest commit the ring has).
            writer.put(self._stack[first + (self.channel or 0)], k, time.time_ns())
        else:
            with writer.slot(frame_id=k, timestamp_ns=time.time_ns()) as view:
                if c == 1 or self.channel is not None:
                    self._read(first + (self.channel or 0), view)
                else:
                    for j in range(c):
                        self._read(first + j, view[j])
        self._index += 1
        self.frames_played = k + 1
        now = time.perf_counter()
        if self._first_s is None:
            self._first_s = now
        self._last_s = now

    def _read(self, page: int, out: np.ndarray[Any, Any]) -> None:
        if self._stack is not None:
            np.copyto(out, self._stack[page], casting="no")
        else:
            tiff_page = self._pages[page]
            if tiff_page is None:
                raise ValueError(f"{self.path}: page {page} is missing from the file")
            tiff_page.asarray(out=out)

    def stop(self) -> None:
        self._stack = None
        tif = getattr(self, "_tif", None)
        if tif is not None:
            tif.close()

    def status(self) -> dict[str, Any]:
        """Frames played so far, whether the stack is memory-mapped, and
        ``play_s``: seconds from the first frame committed to the last."""
        first = self.__dict__.get("_first_s")
        played = 0.0 if first is None else self._last_s - first
        return {
            "frames_played": self.frames_played,
            "memory_mapped": self.memory_mapped,
            "play_s": played,
        }


def _check_rate(fps: Any) -> None:
    if fps is not None and (not isinstance(fps, int | float) or fps < 0):
        raise ValueError(f"fps must be a positive number (or null for flat out), got {fps!r}")


def _check_channel(channel: Any, layout: TiffLayout) -> None:
    if channel is None:
        return
    if not isinstance(channel, int) or not 0 <= channel < layout.channels:
        raise ValueError(
            f"channel must be one of 0 to {layout.channels - 1} (the file has "
            f"{layout.channels} channel(s)), got {channel!r}"
        )
