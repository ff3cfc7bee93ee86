"""CUDA through CuPy: the only module of rigd that imports cupy.

Everything here works without CuPy or a GPU: callers get numpy, and the
device check has nothing to check.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import numpy as np

from rigd.gpu._inventory import SIMULATED_GPUS_ENV, inventory

__all__ = [
    "DeviceFrames",
    "array_module",
    "check_visible_devices",
    "cuda_device_uuid",
    "cuda_uuid",
    "fft_module",
    "pinned_copy_bandwidth",
    "register_pinned",
    "sparse_module",
    "to_host",
]

_HOST_REGISTER_PORTABLE = 1

log = logging.getLogger(__name__)


def _cupy() -> Any:
    """CuPy, or None without it, or on simulated GPUs (where CUDA has no device)."""
    if os.environ.get(SIMULATED_GPUS_ENV):
        return None
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def array_module(has_gpu: bool) -> Any:
    """CuPy for an actor that was given a GPU and has CuPy; numpy otherwise."""
    if has_gpu:
        cupy = _cupy()
        if cupy is not None:
            return cupy
    # Imported here: rigd.init() imports this package for placement, and
    # numpy would double its start-up.
    import numpy

    return numpy


def _is_cupy(xp: Any) -> bool:
    return getattr(xp, "__name__", "") == "cupy"


def fft_module(xp: Any) -> Any:
    """The FFT module that goes with the array module ``xp``.

    ``cupy.fft`` (cuFFT) for CuPy; ``scipy.fft`` for numpy, which keeps
    float32 input in single precision (complex64) and can use several
    threads (``workers=``).
    """
    if _is_cupy(xp):
        return xp.fft
    import scipy.fft

    return scipy.fft


def sparse_module(xp: Any) -> Any:
    """Sparse matrices for ``xp``: ``cupyx.scipy.sparse`` for CuPy, ``scipy.sparse``
    for numpy (the same CSR API: ``csr_matrix((data, (rows, cols)), shape)``)."""
    if _is_cupy(xp):
        import cupyx.scipy.sparse

        return cupyx.scipy.sparse
    import scipy.sparse

    return scipy.sparse


def to_host(array: Any, out: np.ndarray[Any, Any] | None = None, stream: Any = None) -> Any:
    """``array`` in host memory: a CuPy array is copied (into ``out`` if given,
    a pinned ring slot for DMA) on ``stream``, and the call returns when the
    copy is done; a numpy array is returned as it is, or copied into ``out``.

    Raises:
        ValueError: ``out`` has another shape than ``array`` (numpy's or
            CuPy's own message).
    """
    if hasattr(array, "get") and not isinstance(array, _numpy().ndarray):
        return array.get(stream=stream, out=out)
    if out is None:
        return array
    _numpy().copyto(out, array, casting="unsafe")
    return out


def _numpy() -> Any:
    import numpy

    return numpy


def cuda_uuid(raw: bytes) -> str:
    """CUDA's 16-byte device UUID in NVML's spelling: ``GPU-xxxxxxxx-xxxx-...``.

    Raises:
        ValueError: ``raw`` is not 16 bytes.
    """
    raw = bytes(raw)
    if len(raw) != 16:
        raise ValueError(f"a CUDA UUID is 16 bytes, got {len(raw)}")
    h = raw.hex()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _pci_key(bus_id: str) -> tuple[int, ...]:
    """``0000:00:06.0`` (CUDA) and ``00000000:00:06.0`` (NVML) as one key."""
    domain, bus, rest = bus_id.strip().lower().split(":")
    device, function = rest.split(".")
    return tuple(int(part, 16) for part in (domain, bus, device, function))


def cuda_device_uuid(device: int) -> str:
    """The NVML-spelled UUID of CUDA device ``device`` (an index under
    ``CUDA_VISIBLE_DEVICES``), read with CuPy.

    CuPy hands the 16-byte UUID over as a C string, cut short at its first
    zero byte (seen on an H200 whose UUID has a zero byte), so a short one is
    looked up instead: the GPU with the device's PCI bus id in NVML's
    inventory.

    Raises:
        RuntimeError: no CuPy, or the device is not in NVML's inventory.
    """
    cupy = _cupy()
    if cupy is None:
        raise RuntimeError("reading a CUDA device's UUID needs CuPy and a GPU")
    runtime = cupy.cuda.runtime
    raw = bytes(runtime.getDeviceProperties(device)["uuid"])
    if len(raw) == 16:
        return cuda_uuid(raw)
    bus_id = runtime.deviceGetPCIBusId(device)
    key = _pci_key(bus_id)
    for gpu in inventory():
        if not gpu.simulated and _pci_key(gpu.pci_bus_id) == key:
            return gpu.uuid
    raise RuntimeError(
        f"CUDA device {device} (PCI {bus_id}) is not in NVML's inventory; "
        "is nvidia-ml-py installed (the gpu extra)?"
    )


def check_visible_devices() -> None:
    """Refuse to run if CUDA's devices are not the GPUs rigd assigned.

    NVML and CUDA number GPUs differently; rigd names GPUs by UUID in
    ``CUDA_VISIBLE_DEVICES``, and this checks, with CuPy, that CUDA device
    k is the k-th UUID named there. Without CuPy there is nothing to check.

    Raises:
        RuntimeError: a device's UUID is not the one assigned.
    """
    visible = [v for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v]
    if not visible or not all(v.startswith("GPU-") for v in visible):
        return  # nothing assigned, or MIG instances (CUDA reports their parent)
    cupy = _cupy()
    if cupy is None:
        return
    runtime = cupy.cuda.runtime
    try:
        count = runtime.getDeviceCount()
    except runtime.CUDARuntimeError:
        count = 0  # cudaErrorNoDevice: none of the assigned UUIDs is a device CUDA sees
    if count != len(visible):
        raise RuntimeError(
            f"CUDA sees {count} device(s) but rigd assigned {len(visible)} ({visible}); "
            "refusing to run on GPUs that were not assigned"
        )
    for device, expected in enumerate(visible):
        found = cuda_device_uuid(device)
        if found.lower() != expected.lower():
            raise RuntimeError(
                f"CUDA device {device} is {found}, but rigd assigned {expected}; refusing to "
                "run on a GPU that was not assigned (check CUDA_DEVICE_ORDER and the driver)"
            )
    log.debug("CUDA devices match the assigned GPUs: %s", visible)


def register_pinned(address: int, nbytes: int) -> Any:
    """Register host memory (a ring's slots) as pinned, portable across devices.

    Returns a function that unregisters it, or None when there is no CuPy or
    no GPU (nothing to do: the same code then runs on numpy).
    """
    cupy = _cupy()
    if cupy is None or not os.environ.get("CUDA_VISIBLE_DEVICES"):
        return None
    runtime = cupy.cuda.runtime
    runtime.hostRegister(address, nbytes, _HOST_REGISTER_PORTABLE)

    def unregister() -> None:
        runtime.hostUnregister(address)

    return unregister


class DeviceFrames:
    """Frames to the device with double buffering: the copy of frame k+1 runs
    on one CUDA stream while the kernels on frame k run on the other.

    ``upload(view)`` copies a (pinned) ring slot into the next device buffer
    on that buffer's stream, waits for the copy only (so the slot can be
    released at once), and returns the device array and its stream: launch
    the frame's kernels on that stream (``with stream:``). Without CuPy it
    returns the view itself (no copy) and a stream that does nothing.
    """

    def __init__(self, shape: tuple[int, ...], dtype: Any, buffers: int = 2) -> None:
        self._cupy = _cupy() if os.environ.get("CUDA_VISIBLE_DEVICES") else None
        self._next = 0
        if self._cupy is None:
            self._buffers: list[Any] = []
            self._streams: list[Any] = []
            return
        cupy = self._cupy
        self._buffers = [cupy.empty(shape, dtype) for _ in range(buffers)]
        self._streams = [cupy.cuda.Stream(non_blocking=True) for _ in range(buffers)]

    @property
    def on_gpu(self) -> bool:
        return self._cupy is not None

    def upload(self, host: np.ndarray[Any, Any]) -> tuple[Any, Any]:
        if self._cupy is None:
            return host, _NoStream()
        index = self._next
        self._next = (index + 1) % len(self._buffers)
        stream = self._streams[index]
        device = self._buffers[index]
        # The buffer's previous kernels ran on this stream: the copy queues
        # after them, so a frame is never overwritten while in use.
        device.set(host, stream=stream)
        copied = stream.record()
        copied.synchronize()
        return device, stream


class _NoStream:
    def __enter__(self) -> _NoStream:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def synchronize(self) -> None:
        return None


def pinned_copy_bandwidth(nbytes: int = 256 << 20, repeats: int = 4) -> float | None:
    """Host-to-device copy bandwidth from pinned memory on the current device.

    Args:
        nbytes: bytes per copy (256 MiB by default).
        repeats: copies timed after one warm-up copy.

    Returns:
        Bytes per second, or None without CuPy, on simulated GPUs, or when
        CUDA fails (a broken install is reported by the caller, not raised).
    """
    cupy = _cupy()
    if cupy is None:
        return None
    try:
        host = cupy.cuda.alloc_pinned_memory(nbytes)
        array = np.frombuffer(host, np.uint8, nbytes)
        device = cupy.empty(nbytes, np.uint8)
        device.set(array)
        cupy.cuda.Device().synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            device.set(array)
        cupy.cuda.Device().synchronize()
        return repeats * nbytes / (time.perf_counter() - start)
    except Exception:  # noqa: BLE001 - a broken CUDA install is reported, not raised
        return None
