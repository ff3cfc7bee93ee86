"""``rigd run``'s check at load: actors that ask for more CPUs or GPUs than exist here.

``rigd run`` starts its own runtime as ``rigd.init()`` does with no
arguments: ``os.cpu_count()`` CPUs and the GPUs of ``rigd.gpu.inventory``
(``RIGD_FAKE_GPUS`` included). An actor whose ``num_cpus`` or ``num_gpus``
no amount of waiting could meet there is a problem of the file, refused
before anything starts (exit 2), naming the file's line and key, as the
runtime would refuse it at creation (``rigd.actors``' resource check, exit 1).
"""

from __future__ import annotations

import os

from rigd.gpu import GpuPool, inventory
from rigd.pipeline import Plan

__all__ = ["unmet_resources"]


def unmet_resources(plan: Plan) -> list[str]:
    """One line per ``num_cpus``/``num_gpus`` key this machine cannot meet.

    Each reads ``FILE, line N, actors[i].num_gpus: actor 'NAME' asks for
    ...; the fix``. An empty list when every request fits.

    Raises:
        ValueError: ``RIGD_FAKE_GPUS`` is set to something other than a count.
    """
    cpus = os.cpu_count() or 1
    gpus: GpuPool | None = None
    problems: list[str] = []
    for i, actor in enumerate(plan.file.config.actors):
        if actor.num_cpus is not None and actor.num_cpus > cpus:
            problems.append(
                f"{plan.file.where('actors', i, 'num_cpus')}: actor {actor.name!r} asks for "
                f"num_cpus={actor.num_cpus:g} but this machine has {cpus} CPUs; ask for at "
                f"most {cpus}, or run the pipeline on a machine with more"
            )
        if actor.num_gpus:
            gpus = gpus if gpus is not None else GpuPool(inventory())
            why = gpus.impossible(float(actor.num_gpus))
            if why is not None:
                problems.append(
                    f"{plan.file.where('actors', i, 'num_gpus')}: actor {actor.name!r} asks "
                    f"for {why}"
                )
    return problems
