"""Holding the CPUs' wake-up latency low while a pipeline runs (Linux PM QoS).

An idle CPU sleeps in a C-state; the deeper the state, the longer a wake-up
takes (on a virtual machine an idle vCPU halts, and waking it is a VM exit:
~100 us here). Writing a latency bound to ``/dev/cpu_dma_latency`` and
keeping the file open asks the kernel's cpuidle governor to use no state
slower than that; closing it drops the request. This is what tuned's
``latency-performance`` profile does, for the whole machine.

Opt-in (``realtime: {cpu_latency_us: 0}`` in a pipeline file): idle CPUs
then poll instead of sleeping, which costs power. It needs write access to
the device (root, or a udev rule for the service's user).
"""

from __future__ import annotations

import logging
import os
import struct

__all__ = ["CpuLatencyRequest"]

log = logging.getLogger(__name__)

DEVICE = "/dev/cpu_dma_latency"


class CpuLatencyRequest:
    """A held PM QoS request: CPUs wake within ``microseconds`` until ``release``."""

    def __init__(self, microseconds: int, device: str = DEVICE) -> None:
        if microseconds < 0:
            raise ValueError(f"cpu_latency_us must be >= 0, got {microseconds}")
        self.microseconds = microseconds
        self._fd: int | None = None
        try:
            fd = os.open(device, os.O_WRONLY)
        except OSError as exc:
            log.warning(
                "cannot hold CPU wake-up latency at %d us (%s: %s); frames still flow, "
                "with the kernel's default wake-ups. To allow it, run rigd as root or give "
                "its user write access to %s (a udev rule)",
                microseconds,
                device,
                exc.strerror,
                device,
            )
            return
        try:
            os.write(fd, struct.pack("i", microseconds))
        except OSError:
            os.close(fd)
            raise
        self._fd = fd
        log.info("holding CPU wake-up latency at %d us while the pipeline runs", microseconds)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
