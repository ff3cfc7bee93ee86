"""GenICamCamera: GigE Vision and USB3 Vision cameras through Aravis (the one module importing gi).

Aravis is the GenICam library of Linux rigs; rigd drives it from Python
through GObject introspection (PyGObject and the Aravis 0.8 typelib). The
camera is opened by its actor, in the actor's own process, once
(``DeviceSource``): the settings are applied, read back, and recorded in the
run file's metadata under GenICam's feature names (``camera.ExposureTime``);
the frame shape comes from the camera.

The path of a frame: Aravis's stream thread fills one of ``n_buffers``
driver buffers from the network (GVSP) or USB; the step loop pops it and
copies it once, from the driver's buffer into the ring's slot, then gives the
buffer back. A frame the driver could not complete (missing packets, a
timeout, a size mismatch) is not written: its id is skipped, so the recorder
puts it in the drop ledger, and ``frame_info`` says why. A camera is never
held back: a full ring is a drop too (``ring_full``).

Frame ids: rigd's count from 0 at the first frame and never wrap. GigE
Vision 1.x block ids are 16 bits and skip 0 (65535 is followed by 1), so the
camera's ids are unwrapped; USB3 Vision and extended GigE ids are 64 bits.
Every frame's camera id and hardware timestamp go in ``frame_info`` beside
rigd's id and the host time.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from rigd.pipeline._device import DeviceSource

__all__ = ["CameraInfo", "GenICamCamera", "list_cameras"]

log = logging.getLogger(__name__)

FrameSpec = tuple[tuple[int, ...], str]

#: Pixel formats rigd takes, as (dtype, samples per pixel). Packed formats
#: (Mono12Packed, ...) would need unpacking; they are refused.
_PIXEL_FORMATS: dict[str, tuple[str, int]] = {
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

_GV_BLOCK_IDS = 65535  # GigE Vision 1.x block ids: 1 to 65535, then 1 again
_ON_LOST = ("end", "wait")
_POP_S = 0.2


def _aravis() -> Any:
    """The Aravis 0.8 module, or an ImportError saying what to install."""
    try:
        import gi
    except ImportError as exc:
        raise ImportError(
            "GenICam cameras need PyGObject; install it with: pip install 'rigd[genicam]' "
            "(it builds against libgirepository1.0-dev and libcairo2-dev)"
        ) from exc
    try:
        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis
    except (ValueError, ImportError) as exc:
        raise ImportError(
            "the Aravis 0.8 typelib is not installed; install it with: "
            "apt-get install gir1.2-aravis-0.8 (and aravis-tools for the simulator)"
        ) from exc
    return Aravis


def _glib_error() -> type[Exception]:
    from gi.repository import GLib

    error: type[Exception] = GLib.Error
    return error


_libaravis: Any = None


def _buffer_data() -> Any:
    """``arv_buffer_get_data`` through ctypes: the driver buffer's address, no copy.

    PyGObject's ``Buffer.get_data`` returns a copy as ``bytes``; this reads
    the buffer in place, so a frame is copied once, into the ring's slot.
    """
    global _libaravis
    if _libaravis is None:
        name = ctypes.util.find_library("aravis-0.8") or "libaravis-0.8.so.0"
        lib = ctypes.CDLL(name)
        lib.arv_buffer_get_data.restype = ctypes.c_void_p
        lib.arv_buffer_get_data.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_size_t)]
        _libaravis = lib
    return _libaravis.arv_buffer_get_data


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


def list_cameras() -> list[CameraInfo]:
    """The GigE Vision and USB3 Vision devices Aravis finds now.

    Raises:
        ImportError: PyGObject or the Aravis typelib is missing (the message
            says what to install).
    """
    aravis = _aravis()
    aravis.update_device_list()
    return [
        CameraInfo(
            id=aravis.get_device_id(i) or "",
            vendor=aravis.get_device_vendor(i) or "",
            model=aravis.get_device_model(i) or "",
            serial=aravis.get_device_serial_nbr(i) or "",
            interface=aravis.get_device_protocol(i) or "",
            address=aravis.get_device_address(i) or "",
            physical_id=aravis.get_device_physical_id(i) or "",
        )
        for i in range(aravis.get_n_devices())
    ]


def _pair(value: Any, name: str) -> tuple[int, int] | None:
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
        features: other GenICam features to set, by name (``{"ReverseX": true}``).
        n_frames: frames to deliver, then end (``None``: until stopped).
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
        fmt = options.get("pixel_format")
        if fmt is not None and fmt not in _PIXEL_FORMATS:
            raise ValueError(
                f"pixel_format {fmt!r} is not one rigd takes; use one of {sorted(_PIXEL_FORMATS)}"
            )
        for name in ("offset_x", "offset_y", "width", "height", "packet_size", "packet_delay_ns"):
            value = options.get(name)
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f"{name} must be a whole number >= 0, got {value!r}")
        _pair(options.get("binning"), "binning")
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
        if options.get("on_lost", "end") not in _ON_LOST:
            raise ValueError(f"on_lost must be 'end' or 'wait', got {options.get('on_lost')!r}")
        n_frames = options.get("n_frames")
        if n_frames is not None and (not isinstance(n_frames, int) or n_frames < 0):
            raise ValueError(f"n_frames must be >= 0 (or null for unlimited), got {n_frames!r}")

    # -- opening and configuring, in the actor's own process ---------------------------

    def open_device(self) -> None:
        aravis = _aravis()
        error = _glib_error()
        found = list_cameras()
        wanted = self.device_id
        if not found:
            raise RuntimeError(
                "no GenICam camera found; check it is powered and on this host's network "
                "(or USB), and that `rigd cameras` lists it"
            )
        if wanted is not None:
            match = [c for c in found if wanted in (c.id, c.serial, c.address, c.physical_id)]
            if not match:
                listed = ", ".join(f"{c.id!r} ({c.model}, {c.address})" for c in found)
                raise ValueError(
                    f"no GenICam camera {wanted!r}; found {listed}; set device_id to one of "
                    "these ids"
                )
            info = match[0]
        else:
            info = found[0]
        try:
            camera = aravis.Camera.new(info.id)
        except error as exc:
            raise RuntimeError(f"camera {info.id!r} cannot be opened: {_message(exc)}") from None
        self._info = info
        self._camera = camera
        self._gv = bool(camera.is_gv_device())
        try:
            self._configure(camera, aravis)
        except BaseException:
            self.close_device()
            raise
        fmt = camera.get_pixel_format_as_string()
        if fmt not in _PIXEL_FORMATS:
            raise ValueError(
                f"camera {info.id!r} delivers {fmt!r}, which rigd does not take; set "
                f"pixel_format to one of {sorted(set(_PIXEL_FORMATS) & set(self._formats))}"
            )
        _, _, width, height = camera.get_region()
        dtype, samples = _PIXEL_FORMATS[fmt]
        self._shape = (int(height), int(width)) + ((samples,) if samples > 1 else ())
        self._dtype = np.dtype(dtype)
        self._nbytes = int(np.prod(self._shape)) * self._dtype.itemsize

    def _configure(self, camera: Any, aravis: Any) -> None:
        error = _glib_error()
        o = self.options
        device = camera.get_device()
        self._formats = list(camera.dup_available_pixel_formats_as_strings() or [])

        def apply(feature: str, value: Any, action: Any) -> None:
            try:
                action()
            except error as exc:
                raise ValueError(
                    f"the camera refused {feature} = {value!r}: {_message(exc)}"
                ) from None

        def check_bounds(feature: str, value: float, bounds: Any) -> None:
            low, high = bounds
            if not low <= value <= high:
                raise ValueError(
                    f"{feature} = {value!r} is out of the camera's range [{low:g}, {high:g}]; "
                    "give a value in it"
                )

        fmt = o["pixel_format"]
        if fmt is not None:
            if fmt not in self._formats:
                raise ValueError(
                    f"PixelFormat {fmt!r} is not offered by this camera; it offers {self._formats}"
                )
            apply("PixelFormat", fmt, lambda: camera.set_pixel_format_from_string(fmt))
        binning = _pair(o["binning"], "binning")
        if binning is not None:
            if not camera.is_binning_available():
                raise ValueError("this camera has no binning; remove the binning option")
            apply("Binning", list(binning), lambda: camera.set_binning(*binning))
        x, y, w, h = camera.get_region()
        region = [
            o["offset_x"] if o["offset_x"] is not None else x,
            o["offset_y"] if o["offset_y"] is not None else y,
            o["width"] if o["width"] is not None else w,
            o["height"] if o["height"] is not None else h,
        ]
        if region != [x, y, w, h]:
            check_bounds("Width", region[2], camera.get_width_bounds())
            check_bounds("Height", region[3], camera.get_height_bounds())
            apply("Width", region[2], lambda: camera.set_region(*region))
        if o["exposure_us"] is not None:
            check_bounds("ExposureTime", o["exposure_us"], camera.get_exposure_time_bounds())
            apply(
                "ExposureTime", o["exposure_us"], lambda: camera.set_exposure_time(o["exposure_us"])
            )
        if o["gain"] is not None:
            check_bounds("Gain", o["gain"], camera.get_gain_bounds())
            apply("Gain", o["gain"], lambda: camera.set_gain(o["gain"]))
        trigger = o["trigger"]
        if trigger == "off":
            apply("TriggerMode", "Off", camera.clear_triggers)
        else:
            source = "Software" if trigger == "software" else trigger
            sources = list(camera.dup_available_trigger_sources() or [])
            if source not in sources:
                raise ValueError(
                    f"TriggerSource {source!r} is not offered by this camera; it offers "
                    f"{sources} (trigger: 'off', 'software' or one of these)"
                )
            apply("TriggerSource", source, lambda: camera.set_trigger(source))
        if o["frame_rate"] is not None:
            check_bounds("AcquisitionFrameRate", o["frame_rate"], camera.get_frame_rate_bounds())
            apply(
                "AcquisitionFrameRate",
                o["frame_rate"],
                lambda: camera.set_frame_rate(o["frame_rate"]),
            )
        if self._gv:
            packet_socket = o["packet_socket"]
            if packet_socket is None:
                packet_socket = not _loopback(self._info.address)
            if not packet_socket:
                camera.gv_set_stream_options(aravis.GvStreamOption.PACKET_SOCKET_DISABLED)
            if o["packet_size"] is not None:
                apply(
                    "GevSCPSPacketSize",
                    o["packet_size"],
                    lambda: camera.gv_set_packet_size(o["packet_size"]),
                )
            if o["packet_delay_ns"] is not None:
                apply(
                    "GevSCPD",
                    o["packet_delay_ns"],
                    lambda: camera.gv_set_packet_delay(o["packet_delay_ns"]),
                )
        for feature, value in (o["features"] or {}).items():
            if device.get_feature(feature) is None:
                raise ValueError(
                    f"the camera has no feature {feature!r}; check its name in the "
                    "camera's GenICam description (arv-tool-0.8 features)"
                )
            apply(feature, value, lambda f=feature, v=value: _set_feature(device, f, v))

    def device_outputs(self) -> dict[str, FrameSpec]:
        return {
            "frames": (self._shape, self._dtype.str),
            "frame_info": ((len(FRAME_INFO_FIELDS),), np.dtype(np.uint64).str),
        }

    def device_metadata(self) -> dict[str, Any]:
        """Every setting applied, read back from the camera, under GenICam's names."""
        camera = self._camera
        x, y, w, h = camera.get_region()
        meta: dict[str, Any] = {
            "DeviceID": self._info.id,
            "DeviceVendorName": self._info.vendor,
            "DeviceModelName": self._info.model,
            "DeviceSerialNumber": self._info.serial,
            "DeviceInterface": self._info.interface,
            "DeviceAddress": self._info.address,
            "PixelFormat": camera.get_pixel_format_as_string(),
            "OffsetX": int(x),
            "OffsetY": int(y),
            "Width": int(w),
            "Height": int(h),
            "ExposureTime": float(camera.get_exposure_time()),
            "Gain": float(camera.get_gain()),
            "AcquisitionFrameRate": float(camera.get_frame_rate()),
            "TriggerMode": _string_feature(camera, "TriggerMode"),
            "TriggerSource": _string_feature(camera, "TriggerSource"),
            "frame_info_fields": ",".join(FRAME_INFO_FIELDS),
        }
        if camera.is_binning_available():
            bx, by = camera.get_binning()
            meta["BinningHorizontal"], meta["BinningVertical"] = int(bx), int(by)
        if self._gv:
            meta["GevSCPSPacketSize"] = int(camera.gv_get_packet_size())
            meta["GevSCPD"] = int(camera.gv_get_packet_delay())
        device = camera.get_device()
        for feature in self.options["features"] or {}:
            meta[feature] = _get_feature(device, feature)
        return meta

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
        self._last_raw: int | None = None
        self._unwrapped = 0
        self._base = self._next_id()
        self._quiet_since = time.monotonic()
        self._get_data = _buffer_data()

    def _next_id(self) -> int:
        return int(getattr(self, "_last_id", -1)) + 1

    def _start_stream(self) -> None:
        aravis = _aravis()
        camera = self._camera
        stream = camera.create_stream(None, None)
        if self._gv:
            stream.set_property("socket-buffer", aravis.GvStreamSocketBuffer.AUTO)
        payload = camera.get_payload()
        for _ in range(self.options["n_buffers"]):
            stream.push_buffer(aravis.Buffer.new_allocate(payload))
        self._stream = stream
        self._status = {
            getattr(aravis.BufferStatus, name.upper()): name
            for name in (
                "missing_packets",
                "timeout",
                "size_mismatch",
                "wrong_packet_id",
                "aborted",
                "cleared",
                "unknown",
            )
        }
        self._success = aravis.BufferStatus.SUCCESS
        camera.start_acquisition()

    def run_step(self) -> None:
        if self.n_frames is not None and self.frames_delivered >= self.n_frames:
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
        frame_id = self._frame_id(raw)
        hw_ts = int(buffer.get_timestamp())
        driver_ts = int(buffer.get_system_timestamp())
        status = buffer.get_status()
        info = self.outputs.frame_info
        if status != self._success:
            self._drop(frame_id, self._status.get(status, "unknown"), raw, hw_ts, driver_ts)
            return
        size = ctypes.c_size_t()
        address = self._get_data(hash(buffer), ctypes.byref(size))
        if size.value < self._nbytes:
            self._drop(frame_id, "size_mismatch", raw, hw_ts, driver_ts)
            return
        data = np.ctypeslib.as_array((ctypes.c_uint8 * self._nbytes).from_address(address))
        try:
            with self.outputs.frames.slot(
                frame_id=frame_id, timestamp_ns=time.time_ns(), timeout=0
            ) as view:
                np.copyto(view.reshape(-1).view(np.uint8), data, casting="no")
        except TimeoutError:
            self._drop(frame_id, "ring_full", raw, hw_ts, driver_ts)
            return
        _put_info(info, frame_id, (raw, hw_ts, driver_ts, 0))
        self.frames_delivered += 1

    def _frame_id(self, raw: int) -> int:
        """rigd's id for the camera's ``raw`` id: from 0, unwrapped, never repeating."""
        last = self._last_raw
        if last is None:
            step = 0
        elif self._gv and raw <= _GV_BLOCK_IDS and last <= _GV_BLOCK_IDS:
            step = (raw - last) % _GV_BLOCK_IDS or _GV_BLOCK_IDS
        else:
            step = max(1, raw - last)
        self._last_raw = raw
        self._unwrapped += step
        frame_id = self._base + self._unwrapped
        gap = frame_id - self._next_id()
        if gap > 0 and last is not None:
            # Ids the driver never handed over: its buffers were all in use.
            self._count("underrun", gap)
        self._last_id = frame_id
        return frame_id

    def _drop(self, frame_id: int, reason: str, raw: int, hw_ts: int, driver_ts: int) -> None:
        self._count(reason, 1)
        _put_info(self.outputs.frame_info, frame_id, (raw, hw_ts, driver_ts, STATUS_CODES[reason]))

    def _count(self, reason: str, n: int) -> None:
        with self._lock:
            self.drops[reason] = self.drops.get(reason, 0) + n
        log.warning("camera %s: %d frame(s) dropped (%s)", self.device_id or "", n, reason)

    def _alive(self) -> bool:
        try:
            self._camera.get_device().get_integer_feature_value("Width")
        except _glib_error():
            return False
        return True

    def _lose(self) -> None:
        log.error("camera %r stopped answering (%s)", self._info.id, self.on_lost)
        self.lost = True
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
        self._last_raw = None
        self._base = self._next_id()
        self._unwrapped = 0
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
        if self._stream is not None and self._camera is not None:
            stats = self._stream.get_statistics()
            log.info("camera %r: stream statistics %s", self._info.id, stats)
        super().stop()


def _put_info(writer: Any, frame_id: int, row: tuple[int, int, int, int]) -> None:
    try:
        with writer.slot(frame_id=frame_id, timeout=0) as view:
            view[:] = row
    except TimeoutError:
        pass  # a reader of frame_info is a whole ring behind: never hold the camera back


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", exc))


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def _string_feature(camera: Any, name: str) -> str:
    try:
        return str(camera.get_device().get_string_feature_value(name))
    except _glib_error():
        return ""


def _set_feature(device: Any, name: str, value: Any) -> None:
    if isinstance(value, bool):
        device.set_boolean_feature_value(name, value)
    elif isinstance(value, int):
        device.set_integer_feature_value(name, value)
    elif isinstance(value, float):
        device.set_float_feature_value(name, value)
    else:
        device.set_string_feature_value(name, str(value))


def _get_feature(device: Any, name: str) -> str:
    node = device.get_feature(name)
    return str(node.get_value_as_string()) if node is not None else ""
