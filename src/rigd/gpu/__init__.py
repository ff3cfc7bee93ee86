"""GPUs: the inventory (NVML, or simulated with ``RIGD_FAKE_GPUS``), placement,
and CUDA through CuPy (optional: without it, the same code runs on numpy).

A GPU actor's input rings are registered as pinned memory when it attaches,
and ``DeviceFrames`` moves their slots to the device with double buffering.
"""

from rigd.gpu._cuda import (
    DeviceFrames,
    array_module,
    check_visible_devices,
    cuda_device_uuid,
    cuda_uuid,
    fft_module,
    register_pinned,
    sparse_module,
    to_host,
)
from rigd.gpu._inventory import (
    FAKE_GPUS_ENV,
    SIMULATED_GPUS_ENV,
    GpuInfo,
    MigInstance,
    inventory,
)
from rigd.gpu._placement import GpuPool

__all__ = [  # noqa: RUF022 - plain sorted order, which tests/test_exports.py checks
    "DeviceFrames",
    "FAKE_GPUS_ENV",
    "GpuInfo",
    "GpuPool",
    "MigInstance",
    "SIMULATED_GPUS_ENV",
    "array_module",
    "check_visible_devices",
    "cuda_device_uuid",
    "cuda_uuid",
    "fft_module",
    "inventory",
    "register_pinned",
    "sparse_module",
    "to_host",
]
