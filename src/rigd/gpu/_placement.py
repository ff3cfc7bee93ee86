"""GPU placement: which GPUs an actor gets for its ``num_gpus``, as Ray's scheduler.

A fraction (``num_gpus=0.5``) shares a GPU, up to 1.0 in total per GPU; 1
and more take whole GPUs. ``rigd.init(num_gpus=N)`` caps what may be used.
A request that no GPU could ever meet is refused at once; one that can be
met later waits.
"""

from __future__ import annotations

from collections.abc import Sequence

from rigd.gpu._inventory import GpuInfo

__all__ = ["GpuPool"]

_EPSILON = 1e-9


class GpuPool:
    """The GPUs rigd may use and how much of each is taken."""

    def __init__(self, gpus: Sequence[GpuInfo], cap: float | None = None) -> None:
        left = float(len(gpus)) if cap is None else float(cap)
        self.gpus: dict[int, GpuInfo] = {}
        self.capacity: dict[int, float] = {}
        for gpu in sorted(gpus, key=lambda g: g.index):
            if left <= _EPSILON:
                break
            self.gpus[gpu.index] = gpu
            self.capacity[gpu.index] = min(1.0, left)
            left -= self.capacity[gpu.index]
        self.free = dict(self.capacity)

    @property
    def total(self) -> float:
        return sum(self.capacity.values())

    def impossible(self, request: float) -> str | None:
        """Why ``request`` can never be met here, or None if it can (now or later)."""
        if request <= 0:
            return None
        if request < 1:
            if any(c + _EPSILON >= request for c in self.capacity.values()):
                return None
            return (
                f"num_gpus={request:g} (a share of one GPU) but this runtime has {self._describe()}"
            )
        whole = sum(1 for c in self.capacity.values() if c + _EPSILON >= 1)
        if request <= whole:
            return None
        count = int(request) if float(request).is_integer() else request
        wanted = f"{count:g} whole GPU{'' if count == 1 else 's'}"
        return f"num_gpus={request:g} ({wanted}) but this runtime has {self._describe()}"

    def allocate(self, request: float) -> tuple[GpuInfo, ...] | None:
        """Take GPUs for ``request``; None when they are busy now (wait and retry)."""
        if request <= 0:
            return ()
        if request < 1:
            fits = [i for i, f in self.free.items() if f + _EPSILON >= request]
            if not fits:
                return None
            # Best fit: pack fractions onto the fullest GPU that has room.
            index = min(fits, key=lambda i: (self.free[i], i))
            self.free[index] -= request
            return (self.gpus[index],)
        idle = [i for i, f in self.free.items() if abs(f - self.capacity[i]) < _EPSILON and f >= 1]
        if len(idle) < int(request):
            return None
        chosen = idle[: int(request)]
        for index in chosen:
            self.free[index] = 0.0
        return tuple(self.gpus[i] for i in chosen)

    def release(self, gpus: Sequence[GpuInfo], request: float) -> None:
        """Give back what ``allocate(request)`` returned as ``gpus``."""
        share = request if request < 1 else 1.0
        for gpu in gpus:
            if gpu.index in self.free:
                self.free[gpu.index] = min(self.capacity[gpu.index], self.free[gpu.index] + share)

    def _describe(self) -> str:
        if not self.capacity:
            return (
                "no GPUs; run it on a machine with a GPU (and no rigd.init(num_gpus=0)), "
                "or ask for none"
            )
        parts = ", ".join(f"GPU {i}: {c:g}" for i, c in self.capacity.items())
        return (
            f"{len(self.capacity)} GPU(s) ({parts}); raise rigd.init(num_gpus=...) or ask for less"
        )
