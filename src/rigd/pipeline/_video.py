"""VideoSource: video files and V4L2 webcams through PyAV (the one module importing av).

A behaviour lab replays its recordings as a camera: mp4, avi, mkv, at the
file's own rate or flat out, each frame converted to gray or RGB by FFmpeg's
swscale and copied once into the ring's slot. A webcam (``/dev/videoN``) is
a device: it is opened by the actor, in its own process, and reports its
frame size then (``DeviceSource``); a file is small enough to look at while
planning, so its size is known, and a bad path refused, with file, line and
key.

A file that cannot deliver what its header promises says so: one with no
decodable frame is refused (at planning, with file, line and key, and again
when the actor opens it), naming the file and what PyAV reported; one that
ends early (cut in the middle, corrupt data) logs a warning with the frames
reached and puts the frames it promised but never gave in the drop ledger as
``source_ended_early``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import av
import numpy as np

from rigd.pipeline._device import DeviceSource

__all__ = ["VideoSource"]

log = logging.getLogger(__name__)

#: The drop ledger's reason for frames a file promised but did not deliver
#: (``rigd.storage.DropReason.SOURCE_ENDED_EARLY``; named here, so that this
#: actor does not import the HDF5 half of ``rigd.storage``).
ENDED_EARLY = "source_ended_early"

FrameSpec = tuple[tuple[int, ...], str]

#: pixel_format option: (FFmpeg's format, dtype, channels).
_FORMATS: dict[str, tuple[str, str, int]] = {
    "gray": ("gray", "uint8", 1),
    "gray16": ("gray16le", "uint16", 1),
    "rgb": ("rgb24", "uint8", 3),
}
_RATES = ("native", "max")


def _is_device(path: str) -> bool:
    return path.startswith("/dev/video")


class VideoSource(DeviceSource):
    """Frames of a video file or a webcam into ``frames``, as gray or RGB.

    Args:
        path: a video file (mp4, avi, mkv, ...) or a V4L2 device (``/dev/video0``).
        pixel_format: ``gray`` (uint8), ``gray16`` (uint16) or ``rgb`` (uint8,
            height x width x 3).
        rate: ``native`` (a file at its own rate, by its timestamps; a
            webcam at whatever rate it delivers) or ``max`` (flat out).
        loop: a file starts over at the end instead of ending.
        width, height, fps: a webcam's capture size and rate (V4L2 options;
            ``None``: the device's default). Ignored for files.
        input_format: a webcam's V4L2 input format, e.g. ``mjpeg`` or ``yuyv422``.

    Frame ids count from 0 (and on across loops); timestamps are the host's
    time when the frame is written. A process restarted after a crash
    (``max_restarts``) goes on after the last frame its ring has: a file
    from the frame after it (nothing replayed twice), a webcam with the next
    id.

    A file that ends before the frame count its header gives (PyAV's
    ``stream.frames``, else duration x rate) ends the run early: a warning
    with the frames reached and PyAV's error, if any, and the missing ids in
    the recorder's drop ledger as ``source_ended_early`` (``status()`` says
    ``ended_early``); with ``loop`` the next pass goes on after them. A file
    none of whose frames decodes raises ``ValueError`` naming the file and
    what PyAV reported.
    """

    output_names = ("frames",)
    #: The daemon confines ``path`` to its data directory (a file there).
    place_options: ClassVar[dict[str, str]] = {"path": "data_file"}

    def __init__(
        self,
        path: str,
        pixel_format: str = "gray",
        rate: str = "native",
        loop: bool = False,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
        input_format: str | None = None,
    ) -> None:
        self.check_options({"path": path, "pixel_format": pixel_format, "rate": rate, "fps": fps})
        self.path = str(path)
        self.pixel_format = pixel_format
        self.rate = rate
        self.loop = loop
        self.width = width
        self.height = height
        self.fps = fps
        self.input_format = input_format
        self.frames_played = 0
        #: A webcam's frames dropped because its ring was full.
        self.frames_dropped = 0
        self._container: Any = None
        self._play_s = (0.0, 0.0)
        #: Frames the file's header promises per pass (None: it does not say).
        self.frames_expected: int | None = None
        #: The file ended before the frames its header promises (or on an error).
        self.ended_early = False

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        if "path" not in options:
            raise ValueError("VideoSource needs a path option: a video file or /dev/videoN")
        pixel_format = options.get("pixel_format", "gray")
        if pixel_format not in _FORMATS:
            raise ValueError(f"pixel_format must be one of {list(_FORMATS)}, got {pixel_format!r}")
        rate = options.get("rate", "native")
        if rate not in _RATES:
            raise ValueError(
                f"rate must be 'native' (the file's own) or 'max' (flat out), got {rate!r}"
            )
        path = str(options["path"])
        if not _is_device(path) and not os.path.isfile(path):
            raise FileNotFoundError(
                f"video file {path!r} does not exist; give a video file's path or a "
                "webcam's device (/dev/video0)"
            )

    @classmethod
    def defers_outputs(cls, options: Mapping[str, Any]) -> bool:
        return _is_device(str(options.get("path", "")))

    @classmethod
    def describe_outputs(
        cls, options: Mapping[str, Any], inputs: Mapping[str, FrameSpec]
    ) -> dict[str, FrameSpec]:
        cls.check_options(options)
        path = str(options["path"])
        if _is_device(path):
            return {}
        with _open(path, None) as container:
            stream = _video_stream(container, path)
            first = _first_frame(container, stream, path)
            return {"frames": _spec(first, options.get("pixel_format", "gray"))}

    # -- in the actor's own process --------------------------------------------------

    def open_device(self) -> None:
        options: dict[str, str] = {}
        if _is_device(self.path):
            if self.width and self.height:
                options["video_size"] = f"{int(self.width)}x{int(self.height)}"
            if self.fps:
                options["framerate"] = str(self.fps)
            if self.input_format:
                options["input_format"] = self.input_format
        self._container = _open(self.path, options, device=_is_device(self.path))
        self._stream = _video_stream(self._container, self.path)
        self._stream.thread_type = "AUTO"
        self._ff_format, dtype, _ = _FORMATS[self.pixel_format]
        self._dtype = np.dtype(dtype)
        self._frames = self._container.decode(self._stream)
        self._t0: float | None = None
        self._pts0 = 0.0
        self._pass_start = self.frames_played
        self._first: Any = None
        self._stop_decoding = False
        self._slack = 0
        if not _is_device(self.path):
            self.frames_expected = _expected_frames(self._stream, self._container)
            self._slack = _slack(self._stream, self.frames_expected)
            # The first frame, decoded now: its size is the output's, and a
            # file none of whose frames decodes is refused before the run.
            self._first = _first_frame(self._container, self._stream, self.path, self._frames)

    def setup(self) -> None:
        super().setup()
        previous = self.outputs.frames.previous if "frames" in self.outputs else None
        if previous is None or self.frames_played:
            return
        # Restarted after a crash: on after the ring's last frame; a file's
        # frames before it are decoded and passed over (a seek is not exact).
        self.frames_played = previous[0] + 1
        if _is_device(self.path):
            return
        expected = self.frames_expected
        done = self.frames_played % expected if self.loop and expected else self.frames_played
        self._pass_start = self.frames_played - done
        for _ in range(done):
            if self._next_frame() is None:
                break

    def device_outputs(self) -> dict[str, FrameSpec]:
        if self._first is not None:
            return {"frames": _spec(self._first, self.pixel_format)}
        return {"frames": _spec(self._stream.codec_context, self.pixel_format)}

    def device_metadata(self) -> dict[str, Any]:
        ctx = self._stream.codec_context
        rate = self._stream.average_rate or self._stream.guessed_rate
        return {
            "path": self.path,
            "codec": ctx.name,
            "source_pixel_format": ctx.format.name if ctx.format else "",
            "width": int(ctx.width),
            "height": int(ctx.height),
            "frame_rate": float(rate) if rate else 0.0,
            "pixel_format": self.pixel_format,
        }

    def close_device(self) -> None:
        container, self._container = self._container, None
        if container is not None:
            container.close()

    def _next_frame(self) -> Any:
        """The next decoded frame, or None at the end (or on an error, said so)."""
        first, self._first = self._first, None
        if first is not None:
            return first
        try:
            frame = next(self._frames, None)
        except av.error.FFmpegError as exc:
            self._end_of_pass(exc)
            return None
        if frame is None:
            self._end_of_pass(None)
        return frame

    def _end_of_pass(self, error: BaseException | None) -> None:
        """The file ended (or failed to decode): warn and note the frames it
        promised but did not give (``source_ended_early``)."""
        reached = self.frames_played - self._pass_start
        expected = self.frames_expected
        if error is None and (expected is None or reached >= expected - self._slack):
            return
        if reached == 0 and self.frames_played == 0:
            raise ValueError(
                f"video file {self.path!r} has no decodable frames: "
                + (f"PyAV reported: {error}" if error is not None else "the stream ends at once")
            )
        self.ended_early = True
        missing = max(0, expected - reached) if expected is not None else 0
        log.warning(
            "video file %r ended after %d of the %s frames its header promises%s; "
            "%d frame(s) noted in the drop ledger as %s",
            self.path,
            reached,
            expected if expected is not None else "(unknown)",
            f" (PyAV reported: {error})" if error is not None else "",
            missing,
            ENDED_EARLY,
        )
        if missing:
            self.outputs.frames.note_dropped(self.frames_played, missing, ENDED_EARLY)
            self.frames_played += missing
        self._stop_decoding = error is not None

    def resume(self) -> None:
        """Restart the pacing clock (``rate: native``): the next frame is due now.

        The paused time is not made up on resume (no burst of frames at once).
        """
        self._t0 = None

    def run_step(self) -> None:
        frame = None if self._stop_decoding else self._next_frame()
        if frame is None:
            if not self.loop or _is_device(self.path) or self._stop_decoding:
                self.finish()
                return
            self._container.seek(0)
            self._frames = self._container.decode(self._stream)
            self._t0 = None
            self._pass_start = self.frames_played
            frame = self._next_frame()
            if frame is None:
                self.finish()
                return
        if self.rate == "native" and not _is_device(self.path) and frame.time is not None:
            now = time.monotonic()
            if self._t0 is None:
                self._t0, self._pts0 = now, float(frame.time)
            delay = self._t0 + (float(frame.time) - self._pts0) - now
            if delay > 0:
                time.sleep(delay)
        if frame.format.name != self._ff_format:
            frame = frame.reformat(format=self._ff_format)
        k = self.frames_played
        out = self.outputs.frames
        # A webcam is a camera: never held back by its readers (a full ring
        # drops the frame, and the recorder's ledger says ring_full). A file
        # waits: nothing is lost by waiting.
        wait = None if not _is_device(self.path) else 0
        try:
            with out.slot(frame_id=k, timestamp_ns=time.time_ns(), timeout=wait) as view:
                _copy_plane(frame, view, self._dtype)
        except TimeoutError:
            if wait is None:
                raise
            out.skip(k)
            self.frames_dropped += 1
        self.frames_played = k + 1
        now = time.perf_counter()
        self._play_s = (self._play_s[0] or now, now)

    def status(self) -> dict[str, Any]:
        """Frames played so far (a webcam's include those dropped on a full ring),
        those dropped, and ``play_s``: seconds from the first frame committed to
        the last."""
        first, last = self.__dict__.get("_play_s", (0.0, 0.0))
        return {
            "frames_played": self.frames_played,
            "frames_dropped": self.frames_dropped,
            "play_s": last - first,
            "frames_expected": self.frames_expected,
            "ended_early": self.ended_early,
        }


def _open(path: str, options: dict[str, str] | None, device: bool = False) -> Any:
    try:
        if device:
            return av.open(path, format="v4l2", options=options or {})
        return av.open(path, options=options or {})
    except av.error.FileNotFoundError:
        raise FileNotFoundError(
            f"{path!r} does not exist; give a video file's path or a webcam's device "
            "(ls /dev/video* lists them)"
        ) from None
    except av.error.FFmpegError as exc:
        raise ValueError(f"{path!r} cannot be opened as video: {exc}") from None


def _video_stream(container: Any, path: str) -> Any:
    if not container.streams.video:
        raise ValueError(f"{path!r} has no video stream")
    return container.streams.video[0]


def _expected_frames(stream: Any, container: Any = None) -> int | None:
    """The frames a file's header promises: its frame count (mp4, avi, mov),
    else its duration x average rate (mkv, webm: an estimate, ``_slack``),
    else None."""
    if stream.frames:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    seconds = None
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
    elif container is not None and container.duration:
        seconds = container.duration / 1e6  # AV_TIME_BASE: microseconds
    if seconds and rate:
        return round(seconds * float(rate)) or None
    return None


def _slack(stream: Any, expected: int | None) -> int:
    """Frames an estimated count may be over by before a file counts as ended
    early: 0 for a header's own count, else one in a hundred (at least one)."""
    if expected is None or stream.frames:
        return 0
    return max(1, expected // 100)


def _first_frame(container: Any, stream: Any, path: str, frames: Any = None) -> Any:
    """Decode the first frame.

    Raises:
        ValueError: none decodes (naming ``path`` and PyAV's error, or how
            many frames the header promised).
    """
    try:
        first = next(frames if frames is not None else container.decode(stream), None)
    except av.error.FFmpegError as exc:
        raise ValueError(
            f"video file {path!r} has no decodable frames: PyAV reported: {exc}; "
            "the file is damaged or cut short"
        ) from None
    if first is None:
        promised = _expected_frames(stream, container)
        said = f"its header promises {promised}" if promised else "its header gives no count"
        raise ValueError(
            f"video file {path!r} has no decodable frames: its stream ends before the "
            f"first ({said}); the file is damaged or cut short"
        )
    return first


def _spec(ctx: Any, pixel_format: str) -> FrameSpec:
    _, dtype, channels = _FORMATS[pixel_format]
    shape = (int(ctx.height), int(ctx.width)) + ((channels,) if channels > 1 else ())
    return shape, np.dtype(dtype).str


def _copy_plane(frame: Any, view: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> None:
    # One copy, from FFmpeg's (possibly padded) plane into the slot.
    plane = frame.planes[0]
    height = view.shape[0]
    row = plane.line_size // dtype.itemsize
    data = np.frombuffer(plane, dtype, count=height * row).reshape(height, row)
    width = view.shape[1] * (view.shape[2] if view.ndim == 3 else 1)
    np.copyto(view.reshape(height, width), data[:, :width], casting="no")
