"""GenICam through Aravis: the one module importing gi (PyGObject) and Aravis.

Aravis is the GenICam library of Linux rigs; rigd drives it from Python
through GObject introspection (PyGObject and the Aravis 0.8 typelib). This
module loads the library (an ``ImportError`` saying what to install when it
is missing), lists the GigE Vision and USB3 Vision devices, opens a camera,
applies and reads back its settings under GenICam's feature names, and
starts its stream; ``arv_buffer_get_data`` is reached through ctypes so a
frame is read in place. The actor that records a camera's frames,
``GenICamCamera``, is in ``rigd.pipeline._genicam_camera``; what needs no
Aravis (options, formats, frame ids) in ``rigd.pipeline._genicam_options``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Mapping
from typing import Any

from rigd.pipeline._genicam_options import FRAME_INFO_FIELDS, CameraInfo, loopback, pair

__all__ = [
    "CameraInfo",
    "buffer_data",
    "configure",
    "find_camera",
    "glib_error",
    "list_cameras",
    "load_aravis",
    "open_camera",
    "open_stream",
    "read_settings",
    "responds",
]


def load_aravis() -> Any:
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


def glib_error() -> type[Exception]:
    from gi.repository import GLib

    error: type[Exception] = GLib.Error
    return error


_libaravis: Any = None


def buffer_data() -> Any:
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


def list_cameras() -> list[CameraInfo]:
    """The GigE Vision and USB3 Vision devices Aravis finds now.

    Raises:
        ImportError: PyGObject or the Aravis typelib is missing (the message
            says what to install).
    """
    aravis = load_aravis()
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


def find_camera(wanted: str | None) -> CameraInfo:
    """The camera ``wanted`` names (its id, serial number, address or physical
    id), or the first found when ``None``.

    Raises:
        RuntimeError: no camera is found at all.
        ValueError: none is ``wanted`` (the message lists those found).
    """
    found = list_cameras()
    if not found:
        raise RuntimeError(
            "no GenICam camera found; check it is powered and on this host's network "
            "(or USB), and that `rigd cameras` lists it"
        )
    if wanted is None:
        return found[0]
    match = [c for c in found if wanted in (c.id, c.serial, c.address, c.physical_id)]
    if not match:
        listed = ", ".join(f"{c.id!r} ({c.model}, {c.address})" for c in found)
        raise ValueError(
            f"no GenICam camera {wanted!r}; found {listed}; set device_id to one of these ids"
        )
    return match[0]


def open_camera(info: CameraInfo) -> Any:
    """An ``Aravis.Camera`` for ``info``.

    Raises:
        RuntimeError: the camera cannot be opened (Aravis's reason).
    """
    try:
        return load_aravis().Camera.new(info.id)
    except glib_error() as exc:
        raise RuntimeError(f"camera {info.id!r} cannot be opened: {_message(exc)}") from None


def configure(camera: Any, options: Mapping[str, Any], address: str) -> None:
    """Apply GenICamCamera's ``options`` to an open ``camera``, each checked
    against what the camera offers (its formats, ranges, trigger sources).

    Args:
        camera: an ``Aravis.Camera`` from ``open_camera``.
        options: the actor's options (already checked by ``check_camera_options``).
        address: the camera's address (a loopback one turns the packet socket off).

    Raises:
        ValueError: the camera refuses a setting, or does not offer it
            (naming the feature and what it offers).
    """
    aravis = load_aravis()
    error = glib_error()
    o = options
    device = camera.get_device()
    formats = list(camera.dup_available_pixel_formats_as_strings() or [])
    gigevision = bool(camera.is_gv_device())

    def apply(feature: str, value: Any, action: Any) -> None:
        try:
            action()
        except error as exc:
            raise ValueError(f"the camera refused {feature} = {value!r}: {_message(exc)}") from None

    def check_bounds(feature: str, value: float, bounds: Any) -> None:
        low, high = bounds
        if not low <= value <= high:
            raise ValueError(
                f"{feature} = {value!r} is out of the camera's range [{low:g}, {high:g}]; "
                "give a value in it"
            )

    fmt = o["pixel_format"]
    if fmt is not None:
        if fmt not in formats:
            raise ValueError(
                f"PixelFormat {fmt!r} is not offered by this camera; it offers {formats}"
            )
        apply("PixelFormat", fmt, lambda: camera.set_pixel_format_from_string(fmt))
    binning = pair(o["binning"], "binning")
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
        apply("ExposureTime", o["exposure_us"], lambda: camera.set_exposure_time(o["exposure_us"]))
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
    if gigevision:
        packet_socket = o["packet_socket"]
        if packet_socket is None:
            packet_socket = not loopback(address)
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


def read_settings(camera: Any, info: CameraInfo, features: Any) -> dict[str, Any]:
    """Every setting applied, read back from ``camera``, under GenICam's names
    (``ExposureTime`` in microseconds, ``Gain`` as the camera gives it), with
    ``info``'s identity and the value of each feature named in ``features``."""
    x, y, w, h = camera.get_region()
    meta: dict[str, Any] = {
        "DeviceID": info.id,
        "DeviceVendorName": info.vendor,
        "DeviceModelName": info.model,
        "DeviceSerialNumber": info.serial,
        "DeviceInterface": info.interface,
        "DeviceAddress": info.address,
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
    if camera.is_gv_device():
        meta["GevSCPSPacketSize"] = int(camera.gv_get_packet_size())
        meta["GevSCPD"] = int(camera.gv_get_packet_delay())
    device = camera.get_device()
    for feature in features or {}:
        meta[feature] = _get_feature(device, feature)
    return meta


def open_stream(
    camera: Any, n_buffers: int, socket_buffer_bytes: int | None = None
) -> tuple[Any, dict[Any, str], Any]:
    """Start acquiring: a stream with ``n_buffers`` driver buffers of one payload.

    A GigE Vision stream's socket buffer is Aravis's ``auto`` size, or
    ``socket_buffer_bytes`` fixed.

    Returns:
        The ``Aravis.Stream``, the drop reason (a ``STATUS_CODES`` key) of each
        ``Aravis.BufferStatus`` but success, and the success status.
    """
    aravis = load_aravis()
    stream = camera.create_stream(None, None)
    if camera.is_gv_device():
        if socket_buffer_bytes:
            stream.set_property("socket-buffer", aravis.GvStreamSocketBuffer.FIXED)
            stream.set_property("socket-buffer-size", socket_buffer_bytes)
        else:
            stream.set_property("socket-buffer", aravis.GvStreamSocketBuffer.AUTO)
    payload = camera.get_payload()
    for _ in range(n_buffers):
        stream.push_buffer(aravis.Buffer.new_allocate(payload))
    status = {
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
    success = aravis.BufferStatus.SUCCESS
    camera.start_acquisition()
    return stream, status, success


def responds(camera: Any) -> bool:
    """Whether ``camera`` still answers (a feature read succeeds)."""
    try:
        camera.get_device().get_integer_feature_value("Width")
    except glib_error():
        return False
    return True


def _message(exc: BaseException) -> str:
    return str(getattr(exc, "message", exc))


def _string_feature(camera: Any, name: str) -> str:
    try:
        return str(camera.get_device().get_string_feature_value(name))
    except glib_error():
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
