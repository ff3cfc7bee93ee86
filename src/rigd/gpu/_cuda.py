"""CUDA through CuPy: the only module of rigd that imports cupy.

Everything here works without CuPy or a GPU: callers get numpy, and the
device check has nothing to check.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

__all__ = ["array_module", "check_visible_devices", "cuda_uuid"]

log = logging.getLogger(__name__)


def _cupy() -> Any:
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
    return np


def cuda_uuid(raw: bytes) -> str:
    """CUDA's 16-byte device UUID in NVML's spelling: ``GPU-xxxxxxxx-xxxx-...``."""
    h = bytes(raw).hex()
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


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
    count = runtime.getDeviceCount()
    if count != len(visible):
        raise RuntimeError(
            f"CUDA sees {count} device(s) but rigd assigned {len(visible)} ({visible}); "
            "refusing to run on GPUs that were not assigned"
        )
    for device, expected in enumerate(visible):
        found = cuda_uuid(runtime.getDeviceProperties(device)["uuid"])
        if found.lower() != expected.lower():
            raise RuntimeError(
                f"CUDA device {device} is {found}, but rigd assigned {expected}; refusing to "
                "run on a GPU that was not assigned (check CUDA_DEVICE_ORDER and the driver)"
            )
    log.debug("CUDA devices match the assigned GPUs: %s", visible)
