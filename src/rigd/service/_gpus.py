"""What is placed on which GPU: the inventory joined with the session's actors."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from rigd.actors import ActorInfo
from rigd.gpu import GpuInfo

__all__ = ["format_gpu_report", "gpu_report"]

_GIB = 1024**3


def gpu_report(gpus: Sequence[GpuInfo], actors: Sequence[ActorInfo]) -> list[dict[str, Any]]:
    """Each GPU's facts, the actors placed on it and the share of it they hold."""
    report = []
    for gpu in gpus:
        placed: list[dict[str, Any]] = []
        for actor in actors:
            if actor.state == "dead" or gpu.index not in actor.gpu_ids:
                continue
            # A fraction shares one GPU; 1 or more take whole GPUs.
            share = actor.num_gpus if actor.num_gpus < 1 else 1.0
            placed.append(
                {
                    "actor_id": actor.actor_id,
                    "name": actor.name,
                    "namespace": actor.namespace,
                    "class_name": actor.class_name,
                    "share": share,
                }
            )
        facts = dataclasses.asdict(gpu)
        facts["allocated"] = round(sum(p["share"] for p in placed), 6)
        facts["actors"] = placed
        report.append(facts)
    return report


def format_gpu_report(report: Sequence[dict[str, Any]], note: str = "") -> str:
    """The text ``rigd gpus`` prints."""
    if not report:
        return "no GPUs (NVML sees none, or it is not installed)"
    lines = []
    for gpu in report:
        simulated = " (simulated)" if gpu.get("simulated") else ""
        lines.append(
            f"{gpu['index']}: {gpu['name']}{simulated}  {gpu['uuid']}  {gpu['pci_bus_id']}  "
            f"{gpu['memory_free'] / _GIB:.1f} of {gpu['memory_total'] / _GIB:.1f} GiB free"
        )
        for mig in gpu.get("mig", ()):
            lines.append(
                f"   MIG {mig['index']}: {mig['uuid']}  {mig['memory_total'] / _GIB:.1f} GiB"
            )
        actors = gpu.get("actors")
        if actors is None:
            continue
        if not actors:
            lines.append("   nothing placed")
        for actor in actors:
            name = actor["name"] or actor["actor_id"]
            lines.append(
                f"   {actor['share']:g} GPU: {name} ({actor['class_name']}, "
                f"namespace {actor['namespace']})"
            )
    if note:
        lines.append(note)
    return "\n".join(lines)
