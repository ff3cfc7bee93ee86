"""A cluster run's start: every node's part starts, or none runs and every file is sealed.

``ClusterPipeline.start`` (``_cluster``) places one node supervisor per node
(``place``), lets each sending host choose its bridges' ports
(``choose_ports``), then starts the parts in two steps (``start_parts``):
every node *loads* its part (rings, actors, ``setup``: the bridges bind their
ports, the recorders make their files), and only when every node loaded does
any of them *run*. A part that fails to load fails the start: the others are
aborted (``NodeSupervisor.abort``), so every file made on any node is sealed
with ``run_state = "aborted"``, and the error says what went wrong where, in
one line (a port in use names the port and the range to widen; Ray's remote
tracebacks stay in the nodes' logs).
"""

from __future__ import annotations

import errno
import logging
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from rigd._exceptions import PipelineFailedError, ResourceUnavailableError, TaskError
from rigd.actors import get

__all__ = ["choose_ports", "failure_of", "place", "start_parts"]

log = logging.getLogger("rigd.pipeline._cluster")

#: Seconds for every node to load its part (an actor's setup has 60 by default).
LOAD_TIMEOUT_S = 120.0
#: Seconds for the aborts, the ports' choice and the runs' start, each.
CALL_TIMEOUT_S = 60.0
_PORT = re.compile(r"tcp://[^'\s]*:(\d+)")


def place(ray: Any, names: Sequence[str], timeout: float) -> Any:
    """One placement group, a bundle on each node named (its custom resource), or none.

    Raises:
        ResourceUnavailableError: not placed within ``timeout`` s; the message
            names the nodes missing or whose resource is all held now.
    """
    try:
        return ray.reserve([{name: 0.001} for name in names], "PACK", timeout)
    except ResourceUnavailableError as exc:
        total, free = ray.cluster_resources(), ray.available_resources()
        missing = [n for n in names if not total.get(n)]
        held = [n for n in names if total.get(n) and free.get(n, 0.0) < 0.001]
        hints = []
        if missing:
            hints.append(f"no live node has {missing} (ray status lists the nodes)")
        if held:
            node = held[0]
            hints.append(
                f"{held} all held now: a live actor placed with that resource (e.g. "
                f"resources={{{node!r}: 1}}) holds it, and node: needs a part of it; end "
                f"that actor, have it ask for a part ({{{node!r}: 0.5}}), or give the node "
                f"more (ray start --resources '{{\"{node}\": 4}}')"
            )
        raise ResourceUnavailableError(
            f"{exc}; {'; '.join(hints)}" if hints else str(exc)
        ) from None


def choose_ports(
    nodes: Mapping[str, Any],
    hosts: Mapping[str, str],
    needed: Mapping[str, int],
    port_range: tuple[int, int] | None,
) -> dict[str, list[int]]:
    """The tcp ports each sending node's bridges bind, by node name.

    The nodes on one host (the same address: two Ray nodes on one machine)
    are asked together, through one of them, so they never pick the same port.

    Raises:
        ValueError: a host has too few free ports in ``port_range`` (the
            message names the host, the range, and asks to widen it).
    """
    on_host: dict[str, list[str]] = {}
    for name, count in needed.items():
        if count:
            on_host.setdefault(hosts[name], []).append(name)
    refs = {
        host: nodes[names[0]].free_ports.remote(sum(needed[n] for n in names), port_range)
        for host, names in on_host.items()
    }
    ports: dict[str, list[int]] = {name: [] for name in needed}
    for host, names in on_host.items():
        answer = get(refs[host], timeout=CALL_TIMEOUT_S)
        if "error" in answer:
            raise ValueError(answer["error"])
        chosen = iter(answer["ports"])
        for name in names:
            ports[name] = [next(chosen) for _ in range(needed[name])]
    return ports


def failure_of(exc: BaseException) -> dict[str, Any]:
    """A node's part that failed to load, for the driver: ``error`` (one line, the
    remote error's class, where it was raised, its message) and ``port_in_use``
    (the tcp port a bridge found in use, ``0`` if not known, ``None``: not that)."""
    cause: BaseException = exc
    where = ""
    if isinstance(exc, TaskError):
        where = f" in {exc.function_name}"
        if exc.__cause__ is not None:
            cause = exc.__cause__
    text = (str(cause).strip().splitlines() or [""])[0]
    port_in_use = None
    for error in (exc, exc.__cause__, exc.__context__, cause):
        if getattr(error, "errno", None) == errno.EADDRINUSE:
            found = _PORT.search(str(error))
            port_in_use = int(found.group(1)) if found else 0
    return {"error": f"{type(cause).__name__}{where}: {text}", "port_in_use": port_in_use}


def start_parts(
    nodes: Mapping[str, Any],
    parts: Mapping[str, dict[str, Any]],
    hosts: Mapping[str, str],
    run_id: str,
    metadata: Mapping[str, Any],
    port_range: tuple[int, int] | None,
) -> None:
    """Load every node's part, then run them all; or abort them all.

    Raises:
        PipelineFailedError: a part failed to load (or its node was lost): the
            message names the node and why, and the files sealed ``aborted``.
    """
    refs = {
        name: node.load.remote(parts[name], run_id, dict(metadata)) for name, node in nodes.items()
    }
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    failed: dict[str, dict[str, Any]] = {}
    for name, ref in refs.items():
        try:
            answer = get(ref, timeout=max(0.0, deadline - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - a node lost, or no answer: a failed load
            answer = {"error": _line(exc)}
        if "error" in answer:
            failed[name] = answer
    whys = [f"node {n}: {_explain(n, answer, hosts, port_range)}" for n, answer in failed.items()]
    state = "aborted"
    if not whys:
        try:
            get([node.run.remote() for node in nodes.values()], timeout=CALL_TIMEOUT_S)
            return
        except Exception as exc:  # noqa: BLE001 - rare: a node lost between load and run
            whys.append(f"a node's part could not run: {_line(exc)}")
            state = "recovered"  # the parts that ran are killed
    files = _abort(nodes, f"the start failed: {'; '.join(whys)}")
    sealed = f"; the files made are sealed {state}: {', '.join(files)}" if files else ""
    raise PipelineFailedError(f"{'; '.join(whys)}{sealed}")


def _line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


def _explain(
    name: str, answer: Mapping[str, Any], hosts: Mapping[str, str], port_range: Any
) -> str:
    port = answer.get("port_in_use")
    if port is None:
        return str(answer["error"])
    what = f"tcp port {port}" if port else "a bridge's tcp port"
    fix = (
        f"free it, or widen --bridge-ports {port_range[0]}-{port_range[1]} "
        "(ClusterPipeline port_range)"
        if port_range is not None
        else "start the run again (ephemeral ports are chosen anew)"
    )
    return (
        f"{what} on {hosts.get(name, name)} is in use (taken after the run chose it, "
        f"by another program or run): {fix}"
    )


def _abort(nodes: Mapping[str, Any], reason: str) -> list[str]:
    """Abort every node's part (a loaded one's files are sealed ``aborted``); the files."""
    refs = {name: node.abort.remote(reason) for name, node in nodes.items()}
    files: list[str] = []
    for name, ref in refs.items():
        try:
            files.extend(get(ref, timeout=CALL_TIMEOUT_S).get("files", ()))
        except Exception as exc:  # noqa: BLE001 - the others are aborted anyway
            log.error("node %s: its part could not be aborted: %s", name, exc)
    return files
