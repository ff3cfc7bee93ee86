"""GPUs: the inventory (NVML, or simulated with ``RIGD_FAKE_GPUS``), placement,
and CUDA through CuPy (optional: without it, the same code runs on numpy).

Pinned rings come with the rest of the GPU issue.
"""

from rigd.gpu._cuda import array_module, check_visible_devices, cuda_uuid
from rigd.gpu._inventory import FAKE_GPUS_ENV, GpuInfo, MigInstance, inventory
from rigd.gpu._placement import GpuPool

__all__ = [
    "FAKE_GPUS_ENV",
    "GpuInfo",
    "GpuPool",
    "MigInstance",
    "array_module",
    "check_visible_devices",
    "cuda_uuid",
    "inventory",
]
