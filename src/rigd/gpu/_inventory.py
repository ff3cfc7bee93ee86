"""The GPU inventory: what NVML sees, or a simulated set for tests and demos.

The only module of rigd that imports NVML (``pynvml``, from nvidia-ml-py).
No NVML, no driver, or an NVML error gives an empty inventory and one log
line per process, never an exception: a CPU-only rig runs the same code.

``RIGD_FAKE_GPUS=N`` (an integer) replaces the real inventory with N
simulated GPUs, so placement can be tested and demonstrated anywhere.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

__all__ = ["FAKE_GPUS_ENV", "SIMULATED_GPUS_ENV", "GpuInfo", "MigInstance", "inventory"]

log = logging.getLogger(__name__)

FAKE_GPUS_ENV = "RIGD_FAKE_GPUS"
#: Set in the process of an actor placed on simulated GPUs: CUDA is not asked.
SIMULATED_GPUS_ENV = "RIGD_SIMULATED_GPUS"
_SIMULATED_MEMORY = 24 * 1024**3
_warned = False


@dataclass(frozen=True)
class MigInstance:
    """One MIG instance of a GPU (what ``CUDA_VISIBLE_DEVICES`` names by UUID)."""

    index: int
    uuid: str
    memory_total: int


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML numbers it (which may differ from CUDA's numbering)."""

    index: int
    uuid: str
    name: str
    memory_total: int
    memory_free: int
    pci_bus_id: str
    mig: tuple[MigInstance, ...] = ()
    simulated: bool = False


def inventory() -> tuple[GpuInfo, ...]:
    """The GPUs of this machine (or the simulated ones ``RIGD_FAKE_GPUS`` asks for).

    Raises:
        ValueError: ``RIGD_FAKE_GPUS`` is set to something other than a count.
    """
    fake = os.environ.get(FAKE_GPUS_ENV)
    if fake is not None and fake.strip() != "":
        return _simulated(fake)
    return _nvml_inventory()


def _simulated(value: str) -> tuple[GpuInfo, ...]:
    try:
        count = int(value)
    except ValueError:
        raise ValueError(
            f"{FAKE_GPUS_ENV}={value!r} must be a number of simulated GPUs, e.g. {FAKE_GPUS_ENV}=2"
        ) from None
    if count < 0:
        raise ValueError(f"{FAKE_GPUS_ENV}={value!r} must be 0 or more")
    return tuple(
        GpuInfo(
            index=i,
            uuid=f"GPU-00000000-0000-4000-8000-{i:012d}",
            name="Simulated GPU",
            memory_total=_SIMULATED_MEMORY,
            memory_free=_SIMULATED_MEMORY,
            pci_bus_id=f"00000000:{i + 1:02X}:00.0",
            simulated=True,
        )
        for i in range(count)
    )


def _say_once(message: str, *args: Any) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.info(message, *args)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _nvml_inventory() -> tuple[GpuInfo, ...]:
    try:
        import pynvml
    except ImportError:
        _say_once("no GPUs: NVML is not installed (pip install 'rigd[gpu]' on a GPU machine)")
        return ()
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        _say_once("no GPUs: NVML could not start (%s); is the NVIDIA driver loaded?", exc)
        return ()
    try:
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            gpus.append(
                GpuInfo(
                    index=index,
                    uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                    name=_text(pynvml.nvmlDeviceGetName(handle)),
                    memory_total=int(memory.total),
                    memory_free=int(memory.free),
                    pci_bus_id=_text(pynvml.nvmlDeviceGetPciInfo(handle).busId),
                    mig=_mig_instances(pynvml, handle),
                )
            )
        return tuple(gpus)
    except pynvml.NVMLError as exc:
        _say_once("no GPUs: NVML failed while listing them (%s)", exc)
        return ()
    finally:
        pynvml.nvmlShutdown()


def _mig_instances(pynvml: Any, handle: Any) -> tuple[MigInstance, ...]:
    try:
        current, _pending = pynvml.nvmlDeviceGetMigMode(handle)
    except pynvml.NVMLError:
        return ()  # not a MIG-capable GPU
    if current != pynvml.NVML_DEVICE_MIG_ENABLE:
        return ()
    instances = []
    for index in range(pynvml.nvmlDeviceGetMaxMigDeviceCount(handle)):
        try:
            mig = pynvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, index)
        except pynvml.NVMLError:
            continue  # an empty slot
        memory = pynvml.nvmlDeviceGetMemoryInfo(mig)
        instances.append(
            MigInstance(index, _text(pynvml.nvmlDeviceGetUUID(mig)), int(memory.total))
        )
    return tuple(instances)
