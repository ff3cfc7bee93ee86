"""One 2-node Ray cluster (``ray.cluster_utils.Cluster``) per test module, on this machine.

The nodes are named by custom resources, ``node_a`` and ``node_b``, as a lab
names its camera PC and its GPU PC.
"""

from __future__ import annotations

import gc
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    from ray.cluster_utils import Cluster

    # The workers import the tests' modules, as the driver does.
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), before or "") if p)
    with warnings.catch_warnings():
        # Ray's dashboard port probe (ray/_private/services.py) leaves a socket
        # in a reference cycle; collected here, not in a later test's phase.
        warnings.simplefilter("ignore", ResourceWarning)
        cluster = _start(Cluster)
        gc.collect()
    try:
        cluster.add_node(num_cpus=2, resources={"node_b": 4})
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def _start(cluster_class: Any) -> Any:
    return cluster_class(
        initialize_head=True,
        head_node_args={
            "num_cpus": 2,
            "resources": {"node_a": 4},
            # A removed node is declared dead within about 1.5 s (Ray's default: 15 s).
            "_system_config": {
                "health_check_initial_delay_ms": 0,
                "health_check_period_ms": 500,
                "health_check_failure_threshold": 3,
            },
        },
    )
