"""GPUs: the inventory (NVML, or simulated with ``RIGD_FAKE_GPUS``).

Placement by UUID and pinned rings come with the rest of the GPU issue.
"""

from rigd.gpu._inventory import FAKE_GPUS_ENV, GpuInfo, MigInstance, inventory

__all__ = ["FAKE_GPUS_ENV", "GpuInfo", "MigInstance", "inventory"]
