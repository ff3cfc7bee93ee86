"""GenICamCamera: GigE Vision and USB3 Vision cameras, recorded through Aravis.

Aravis is the GenICam library of Linux rigs; ``rigd.pipeline._genicam``
(the one module importing gi and Aravis) loads it, opens the camera and
applies its settings; this actor handles the objects it returns. The
camera is opened by its actor, in the actor's own process, once
(``DeviceSource``): the settings are applied, read back, and recorded in the
run file's metadata under GenICam's feature names (``camera.ExposureTime``);
the frame shape comes from the camera.

The path of a frame: Aravis's stream thread fills one of ``n_buffers``
driver buffers from the network (GVSP) or USB; the step loop pops it and
copies it once, from the driver's buffer into the ring's slot, then gives the
buffer back. A frame the driver could not complete (missing packets, a
timeout, a size mismatch) is not written: its id is skipped and noted on the
ring with its reason (``RingWriter.note_dropped``), so the recorder puts it
in the run file's drop ledger as ``missing_packets``, ``timeout``,
``size_mismatch``, ... and ``frame_info`` says why too. Ids the driver never
handed over (all its buffers were in use) are ``underrun``. A camera is never
held back: a full ring is a drop too (``ring_full``).

Frame ids: rigd's count from 0 at the first frame and never wrap. GigE
Vision 1.x block ids are 16 bits and skip 0 (65535 is followed by 1), so the
camera's ids are unwrapped; USB3 Vision and extended GigE ids are 64 bits.
Every frame's camera id and hardware timestamp go in ``frame_info`` beside
rigd's id and the host time.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from rigd._exceptions import RingClosedError
from rigd.pipeline._device import DeviceSource
from rigd.pipeline._genicam import (
    buffer_data,
    configure,
    find_camera,
    open_camera,
    open_stream,
    read_settings,
    responds,
)
from rigd.pipeline._genicam_options import (
    FRAME_INFO_FIELDS,
    FRAME_INFO_UNITS,
    PIXEL_FORMATS,
    STATUS_CODES,
    FrameIds,
    FrameSpec,
    check_camera_options,
    put_info,
)
from rigd.storage import RecordField

__all__ = ["GenICamCamera"]

log = logging.getLogger("rigd.pipeline._genicam")

_POP_S = 0.2


class GenICamCamera(DeviceSource):
    """A GenICam camera (GigE Vision, USB3 Vision) into ``frames`` and ``frame_info``.

    Args:
        device_id: Aravis's device id (``rigd cameras`` lists them, e.g.
            ``Aravis-Fake-GV01``, or a serial number or address); ``None``:
            the first camera found.
        pixel_format: GenICam ``PixelFormat`` (``Mono8``, ``Mono16``,
            ``RGB8``, ...); ``None``: the camera's current one.
        offset_x, offset_y, width, height: the ROI (``OffsetX``, ``OffsetY``,
            ``Width``, ``Height``); ``None``: the camera's current values.
        binning: ``BinningHorizontal`` / ``BinningVertical``: a number or
            ``[h, v]``.
        exposure_us: ``ExposureTime`` in microseconds.
        gain: ``Gain`` (dB, or the camera's raw gain where it has no dB gain).
        frame_rate: ``AcquisitionFrameRate`` in frames per second.
        trigger: ``off`` (free run), ``software`` (frames on ``trigger()``),
            or a hardware line's ``TriggerSource`` name (``Line0``, ...).
        n_buffers: driver buffers in flight.
        packet_size, packet_delay_ns: GigE Vision ``GevSCPSPacketSize`` and
            ``GevSCPD`` (``None``: the camera's).
        packet_socket: GigE: receive through a packet socket (fast, needs
            CAP_NET_RAW; ``None``: yes, except on a loopback address).
        socket_buffer_bytes: GigE: the stream socket's receive buffer
            (Aravis's ``socket-buffer-size``, fixed), 4 MiB by default: 80 ms
            of 512x512 frames at 200 fps, so a receiving thread held up for
            a moment loses no packet (Aravis's ``auto`` size lost 1-15% of
            the frames on loopback, BENCHMARKS.md "Sources"); ``None``:
            Aravis's ``auto``. Linux caps it at ``net.core.rmem_max``.
        features: other GenICam features to set, by name (``{"ReverseX": true}``).
        n_frames: frames to deliver, then end (``None``: until stopped): the
            frames written to ``frames``, which a recorder puts in the run
            file. Dropped buffers (incomplete, underrun, a full ring) do not
            count: they are counted apart (``status()["drops"]``, the ledger),
            so the last frame id is ``n_frames - 1`` plus the drops. As
            ``SimulatedCamera``'s ``n_frames``.
        timeout_s: how long a frame may take before the camera is checked.
        on_lost: when the camera goes away: ``end`` the run (the files are
            sealed as usual), or ``wait`` for it to come back and go on.
    """

    output_names = ("frames", "frame_info")

    def __init__(
        self,
        device_id: str | None = None,
        pixel_format: str | None = None,
        offset_x: int | None = None,
        offset_y: int | None = None,
        width: int | None = None,
        height: int | None = None,
        binning: int | list[int] | None = None,
        exposure_us: float | None = None,
        gain: float | None = None,
        frame_rate: float | None = None,
        trigger: str = "off",
        n_buffers: int = 16,
        packet_size: int | None = None,
        packet_delay_ns: int | None = None,
        packet_socket: bool | None = None,
        socket_buffer_bytes: int | None = 4 << 20,
        features: dict[str, Any] | None = None,
        n_frames: int | None = None,
        timeout_s: float = 2.0,
        on_lost: str = "end",
    ) -> None:
        options = dict(locals())
        del options["self"]
        self.check_options(options)
        self.options = options
        self.device_id = device_id
        self.n_frames = n_frames
        self.timeout_s = float(timeout_s)
        self.on_lost = on_lost
        self.frames_delivered = 0
        self.drops: dict[str, int] = {}
        self.lost = False
        self._camera: Any = None
        self._stream: Any = None
        self._lock = threading.Lock()

    @classmethod
    def check_options(cls, options: Mapping[str, Any]) -> None:
        """Refuse, at load, options of the wrong type or range (``ValueError``)."""
        check_camera_options(options)

    @classmethod
    def describe_fields(
        cls, options: Mapping[str, Any], inputs: Mapping[str, FrameSpec]
    ) -> dict[str, tuple[RecordField, ...]]:
        """Name ``frame_info``'s columns, with units: a recorder stores them by name
        (``camera_frame_id``, ``hardware_timestamp_ns``, ``driver_timestamp_ns``,
        ``status``; the stream's ``frames`` keeps its N x 4 uint64 layout)."""
        return {
            "frame_info": tuple(
                RecordField(name, *FRAME_INFO_UNITS[name]) for name in FRAME_INFO_FIELDS
            )
        }

    # -- opening and configuring, in the actor's own process ---------------------------
    def open_device(self) -> None:
        info = find_camera(self.device_id)
        camera = open_camera(info)
        self._info = info
        self._camera = camera
        self._gv = bool(camera.is_gv_device())
        try:
            configure(camera, self.options, info.address)
        except BaseException:
            self.close_device()
            raise
        fmt = camera.get_pixel_format_as_string()
        if fmt not in PIXEL_FORMATS:
            offered = camera.dup_available_pixel_formats_as_strings() or []
            raise ValueError(
                f"camera {info.id!r} delivers {fmt!r}, which rigd does not take; set "
                f"pixel_format to one of {sorted(set(PIXEL_FORMATS) & set(offered))}"
            )
        _, _, width, height = camera.get_region()
        dtype, samples = PIXEL_FORMATS[fmt]
        self._shape = (int(height), int(width)) + ((samples,) if samples > 1 else ())
        self._dtype = np.dtype(dtype)
        self._nbytes = int(np.prod(self._shape)) * self._dtype.itemsize
        # The ctypes type of one frame's bytes, made once (a new type per frame
        # costs ~3 us).
        self._frame_type = ctypes.c_uint8 * self._nbytes

    def device_outputs(self) -> dict[str, FrameSpec]:
        return {
            "frames": (self._shape, self._dtype.str),
            "frame_info": ((len(FRAME_INFO_FIELDS),), np.dtype(np.uint64).str),
        }

    def device_metadata(self) -> dict[str, Any]:
        """Every setting applied, read back from the camera, under GenICam's names."""
        return read_settings(self._camera, self._info, self.options["features"])

    def close_device(self) -> None:
        camera, self._camera = self._camera, None
        stream, self._stream = self._stream, None
        if camera is not None:
            try:
                camera.stop_acquisition()
            except Exception:  # noqa: BLE001 - a camera that is gone cannot stop
                pass
        del stream, camera

    # -- acquisition -------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        self._start_stream()
        self._ids = FrameIds(self._gv, self._next_id())
        self._failed: list[tuple[str, int, int, int]] = []
        self._quiet_since = time.monotonic()
        self._get_data = buffer_data()

    def _next_id(self) -> int:
        ids: FrameIds | None = getattr(self, "_ids", None)
        if ids is not None:
            return ids.last_id + 1  # the camera reopened by this process
        # A process restarted after a crash goes on after the ring's last frame:
        # ids stay increasing in the ring and in the run file.
        previous = self.outputs.frames.previous if "frames" in self.outputs else None
        return previous[0] + 1 if previous is not None else 0

    def _start_stream(self) -> None:
        self._stream, self._status, self._success = open_stream(
            self._camera, self.options["n_buffers"], self.options["socket_buffer_bytes"]
        )

    def run_step(self) -> None:
        if self.n_frames is not None and self.frames_delivered >= self.n_frames:
            self._drop_failed()
            self.finish()
            return
        stream = self._stream
        if stream is None:
            self._reconnect()
            return
        # Short waits, so a stop is seen soon; the camera is checked after
        # timeout_s without a frame (a triggered camera may wait for long).
        buffer = stream.timeout_pop_buffer(int(min(self.timeout_s, _POP_S) * 1e6))
        if buffer is None:
            now = time.monotonic()
            if now - self._quiet_since >= self.timeout_s:
                self._quiet_since = now
                if not self._alive():
                    self._lose()
            return
        self._quiet_since = time.monotonic()
        try:
            self._deliver(buffer)
        finally:
            stream.push_buffer(buffer)

    def _deliver(self, buffer: Any) -> None:
        raw = int(buffer.get_frame_id())
        hw_ts = int(buffer.get_timestamp())
        driver_ts = int(buffer.get_system_timestamp())
        status = buffer.get_status()
        if status != self._success:
            # A buffer the driver could not fill: its block id is not to be
            # trusted (a lost leader leaves 0, or the id the buffer had
            # before), so it takes its id from the next good frame's.
            self._failed.append((self._status.get(status, "unknown"), raw, hw_ts, driver_ts))
            return
        frame_id = self._frame_id(raw)
        info = self.outputs.frame_info
        size = ctypes.c_size_t()
        address = self._get_data(hash(buffer), ctypes.byref(size))
        if size.value < self._nbytes:
            self._drop(frame_id, "size_mismatch", raw, hw_ts, driver_ts)
            return
        data = np.frombuffer(memoryview(self._frame_type.from_address(address)), np.uint8)
        try:
            with self.outputs.frames.slot(
                frame_id=frame_id, timestamp_ns=time.time_ns(), timeout=0
            ) as view:
                np.copyto(view.reshape(-1).view(np.uint8), data, casting="no")
        except TimeoutError:
            # A camera is never held back: the ring counts the drop and the
            # recorder's ledger says ring_full.
            self._drop(frame_id, "ring_full", raw, hw_ts, driver_ts)
            return
        put_info(info, frame_id, (raw, hw_ts, driver_ts, 0))
        self.frames_delivered += 1

    def _frame_id(self, raw: int) -> int:
        """rigd's id for the camera's ``raw`` id (from 0, unwrapped, never
        repeating); the ids skipped go to the buffers that failed since the
        last frame, in order, and the rest are ``underrun``."""
        failed, self._failed = self._failed, []
        if failed and not self._ids.started:
            self._drops_from(self._ids.take(len(failed)), failed)
            failed = []
        frame_id, skipped = self._ids.unwrap(raw)
        first = frame_id - skipped
        self._drops_from(first, failed[:skipped])
        if len(failed) > skipped:
            # Buffers for blocks the driver also handed over complete: no id lost.
            self._count("repeated", len(failed) - skipped)
        underrun = skipped - min(len(failed), skipped)
        if underrun > 0:
            # Ids the driver never handed over: its buffers were all in use.
            self._count("underrun", underrun)
            self.outputs.frames.note_dropped(frame_id - underrun, underrun, "underrun")
        return frame_id

    def _drops_from(self, first: int, failed: list[tuple[str, int, int, int]]) -> None:
        """Drop the ``failed`` buffers as ids ``first``, ``first + 1``, ...: a
        note per run of one reason, a ``frame_info`` row each."""
        k = 0
        while k < len(failed):
            reason = failed[k][0]
            end = k + 1
            while end < len(failed) and failed[end][0] == reason:
                end += 1
            self._count(reason, end - k)
            if reason == "ring_full":  # counted by the ring too (frames_skipped)
                self.outputs.frames.skip(first + k, end - k)
            else:
                self.outputs.frames.note_dropped(first + k, end - k, reason)
            for j in range(k, end):
                _, raw, hw_ts, driver_ts = failed[j]
                put_info(
                    self.outputs.frame_info,
                    first + j,
                    (raw, hw_ts, driver_ts, STATUS_CODES[reason]),
                )
            k = end

    def _drop(self, frame_id: int, reason: str, raw: int, hw_ts: int, driver_ts: int) -> None:
        self._drops_from(frame_id, [(reason, raw, hw_ts, driver_ts)])

    def _drop_failed(self) -> None:
        """The buffers that failed after the last frame: ids after it (at the end)."""
        failed, self._failed = self._failed, []
        if failed and self._stream is not None:
            try:
                self._drops_from(self._ids.take(len(failed)), failed)
            except RingClosedError:
                self._count(failed[0][0], len(failed))  # the stream has ended

    def _count(self, reason: str, n: int) -> None:
        """Count ``n`` drops for ``reason``; say so in the log at most once a
        second per reason (the ledger has every one)."""
        now = time.monotonic()
        with self._lock:
            self.drops[reason] = self.drops.get(reason, 0) + n
            logged = self.__dict__.setdefault("_drops_logged", {})
            last, since = logged.get(reason, (0.0, 0))
            since += n
            if now - last < 1.0:
                logged[reason] = (last, since)
                return
            logged[reason] = (now, 0)
        log.warning(
            "camera %s: %d frame(s) dropped (%s), %d in all",
            self.device_id or "",
            since,
            reason,
            self.drops[reason],
        )

    def _alive(self) -> bool:
        return responds(self._camera)

    def _lose(self) -> None:
        log.error("camera %r stopped answering (%s)", self._info.id, self.on_lost)
        self.lost = True
        self._drop_failed()
        self.close_device()
        self.__dict__["_rigd_device_open"] = False
        if self.on_lost == "end":
            self.finish()

    def _reconnect(self) -> None:
        """``on_lost: wait``: look for the camera again (once a step), and go on."""
        if self.stopping:
            return
        try:
            self.open_device()
        except Exception as exc:  # noqa: BLE001 - not back yet: try again next step
            log.debug("camera not back yet: %s", exc)
            time.sleep(min(self.timeout_s, 0.5))
            return
        self.__dict__["_rigd_device_open"] = True
        self._start_stream()
        self._ids.restart(self._next_id())
        self.lost = False
        log.warning("camera %r is back; acquisition goes on", self._info.id)

    # -- callable through the handle ---------------------------------------------------

    def trigger(self) -> None:
        """Send a software trigger (``trigger: software``): the camera takes one frame."""
        camera = self._camera
        if camera is None:
            raise RuntimeError("the camera is not open (it was lost, or the run is over)")
        if self.options["trigger"] != "software":
            raise RuntimeError(
                f"trigger() needs trigger: software; this camera's trigger is "
                f"{self.options['trigger']!r}"
            )
        camera.software_trigger()

    def status(self) -> dict[str, Any]:
        """Frames delivered, drops by reason, and whether the camera was lost."""
        with self._lock:
            drops = dict(self.drops)
        return {"frames_delivered": self.frames_delivered, "drops": drops, "lost": self.lost}

    def stop(self) -> None:
        self._drop_failed()
        if self._stream is not None and self._camera is not None:
            stats = self._stream.get_statistics()
            log.info("camera %r: stream statistics %s", self._info.id, stats)
        super().stop()
