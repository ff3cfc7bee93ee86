"""CPU and GPU accounting for the head: what actors and tasks may reserve."""

from __future__ import annotations

from rigd.gpu import GpuInfo, GpuPool

__all__ = ["Resources"]


class Resources:
    """The session's CPUs and GPUs, and what of them is free now.

    Args:
        total_cpus: the CPUs actors and tasks may reserve (``num_cpus``).
        gpus: the GPUs they may reserve (``num_gpus``), and what each has free.
    """

    def __init__(self, total_cpus: float, gpus: GpuPool) -> None:
        self.total_cpus = total_cpus
        self.total_gpus = gpus.total
        self.cpus_free = total_cpus
        self._gpus = gpus

    def impossible(self, who: str, num_cpus: float, num_gpus: float) -> str | None:
        """Why no amount of waiting could meet a request, in words; None if it could."""
        if num_cpus > self.total_cpus:
            return (
                f"{who} asks for num_cpus={num_cpus:g} but this runtime has "
                f"{self.total_cpus:g} CPUs; ask for fewer, or pass rigd.init(num_cpus=...)"
            )
        if (gpus := self._gpus.impossible(float(num_gpus))) is not None:
            return f"{who} asks for {gpus}"
        return None

    def now(self) -> tuple[dict[str, float], dict[str, float]]:
        """``(total, free)`` under Ray's keys ``CPU`` and ``GPU`` (GPU only when there are GPUs)."""
        total = {"CPU": float(self.total_cpus)}
        free = {"CPU": float(self.cpus_free)}
        if self.total_gpus:
            total["GPU"] = float(self.total_gpus)
            free["GPU"] = float(sum(self._gpus.free.values()))
        return total, free

    def take_cpus(self, num_cpus: float) -> None:
        """Reserve ``num_cpus`` (the caller checked they fit)."""
        self.cpus_free -= num_cpus

    def give_cpus(self, num_cpus: float) -> None:
        """Return ``num_cpus`` reserved before."""
        self.cpus_free += num_cpus

    def allocate_gpus(self, num_gpus: float) -> tuple[GpuInfo, ...] | None:
        """Reserve ``num_gpus``; None while they are not free."""
        return self._gpus.allocate(float(num_gpus))

    def release_gpus(self, gpus: tuple[GpuInfo, ...], num_gpus: float) -> None:
        """Return GPUs reserved with ``allocate_gpus``."""
        self._gpus.release(gpus, float(num_gpus))

    def waiting_for(self, num_cpus: float, num_gpus: float) -> str:
        """Why a request for ``num_cpus`` and ``num_gpus`` waits, in words."""
        if num_cpus > self.cpus_free:
            return f"num_cpus={num_cpus:g}: {self.cpus_free:g} CPUs free"
        if num_gpus:
            free = ", ".join(f"GPU {i}: {f:g}" for i, f in self._gpus.free.items())
            return f"num_gpus={num_gpus:g}: free now {free or 'none'}"
        return "its turn: actors ahead of it are waiting"
