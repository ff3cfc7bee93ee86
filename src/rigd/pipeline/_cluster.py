"""ClusterPipeline: one pipeline whose actors run on several nodes of a Ray cluster.

Each actor names its node (``node:``, a custom resource of one node). The
pipeline is cut into one sub-pipeline per node, and each node runs its own
with rigd's one-machine supervisor (rings in that node's shared memory),
inside a Ray actor placed there: the *node supervisor*. Every node
supervisor is placed at once in one placement group, one bundle per node
(all or nothing). A link whose two ends are on different nodes becomes a
bridge (``BridgeSender`` on the writer's node, ``BridgeReceiver`` on the
reader's, see ``_bridge.py``), with the link's policy and slots.

Run files are written by the recorders on their own nodes (the node that
owns the disk); each records, in the ``stream_hosts`` metadata (JSON), the
host every stream came from. A node lost mid-run (its node supervisor dies
with it) fails the run: the recorders left note it in their drop ledgers,
and the rest is stopped, so every file is sealed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from rigd.actors import (
    PlacementGroupSchedulingStrategy,
    get,
    ray_backend,
    remote,
)
from rigd.config import load_pipeline
from rigd.pipeline._cluster_node import NodeSupervisor
from rigd.pipeline._cluster_ports import bridges_from, check_range
from rigd.pipeline._cluster_start import choose_ports, place, start_parts
from rigd.pipeline._cluster_watch import POLL_S, Lost, poll_nodes
from rigd.pipeline._plan import plan_pipeline
from rigd.pipeline._state import RunState
from rigd.pipeline._supervisor import RunReport

__all__ = ["ClusterPipeline", "NodeSupervisor", "split_pipeline"]

log = logging.getLogger(__name__)

_PLACE_TIMEOUT_S = 60.0
_BRIDGE_PEER_TIMEOUT_S = 5.0
#: Seconds for the other nodes to note a lost node in their ledgers, in all.
_NOTE_TIMEOUT_S = 10.0
#: Seconds each other node has to stop (drain its links) after a node was lost.
_STOP_AFTER_LOSS_S = 5.0


def split_pipeline(
    text: str,
    hosts: Mapping[str, str],
    ports: Mapping[str, Sequence[int]] | None = None,
    *,
    name: str = "<cluster pipeline>",
) -> dict[str, dict[str, Any]]:
    """Cut a pipeline file's text into one pipeline (a dict, as YAML has it) per node.

    Args:
        text: the pipeline file; every actor has ``node:``.
        hosts: each node's address (its IP), by node name.
        ports: the tcp ports the bridges sent from each node bind, by node
            name, in the order of the links (``bridges_from`` says how many);
            ``None``: port 0 for each, a placeholder (to count the bridges).
        name: what the file's problems name it by (its path).

    Raises:
        ValueError: an actor without ``node:``, or on a node not in ``hosts``.
        PipelineFileError: the file cannot be planned (a ``ValueError`` too).
    """
    config = yaml.safe_load(text)
    actors = config.get("actors") or []
    node_of: dict[str, str] = {}
    problems = []
    for actor in actors:
        node = actor.get("node")
        if node is None:
            problems.append(f"actor {actor.get('name')!r} names no node (node: ...)")
        elif node not in hosts:
            problems.append(
                f"actor {actor.get('name')!r} is on node {node!r}, which no live node has "
                f"as a resource (nodes: {sorted(hosts)})"
            )
        node_of[actor.get("name")] = node
    if problems:
        raise ValueError("; ".join(problems))
    plan = _plan_of(text, name)
    shapes = {(r.writer, r.output): (r.shape, r.dtype) for r in plan.rings}
    parts: dict[str, dict[str, Any]] = {
        node: {
            **{k: v for k, v in config.items() if k not in ("actors", "links")},
            "actors": [],
            "links": [],
        }
        for node in sorted(set(node_of.values()))
    }
    for actor in actors:
        parts[node_of[actor["name"]]]["actors"].append(
            {k: v for k, v in actor.items() if k != "node"}
        )
    bridges: dict[tuple[str, str, str], str] = {}
    stream_hosts: dict[str, dict[str, str]] = {node: {} for node in parts}
    for link in config.get("links") or []:
        source, target = (end.strip() for end in link["link"].split("->"))
        writer, output = source.split(".", 1)
        reader, input_name = target.split(".", 1)
        here, there = node_of[writer], node_of[reader]
        stream_hosts[there][input_name] = hosts[here]
        if here == there:
            parts[here]["links"].append(link)
            continue
        key = (writer, output, there)
        extra = {k: v for k, v in link.items() if k != "link"}
        if key not in bridges:
            taken = sum(1 for k in bridges if node_of[k[0]] == here)
            port = ports[here][taken] if ports is not None else 0
            name = f"{writer}_{output}_to_{there}"[:60]
            bridges[key] = name
            shape, dtype = shapes[(writer, output)]
            parts[here]["actors"].append(
                {
                    "name": f"{name}_tx",
                    "class": "rigd.pipeline.BridgeSender",
                    "options": {
                        "address": f"tcp://0.0.0.0:{port}",
                        "peer_timeout": _BRIDGE_PEER_TIMEOUT_S,
                    },
                }
            )
            parts[here]["links"].append({**extra, "link": f"{source} -> {name}_tx.frames"})
            parts[there]["actors"].append(
                {
                    "name": f"{name}_rx",
                    "class": "rigd.pipeline.BridgeReceiver",
                    "options": {
                        "address": f"tcp://{hosts[here]}:{port}",
                        "shape": list(shape),
                        "dtype": dtype,
                        "peer_timeout": _BRIDGE_PEER_TIMEOUT_S,
                    },
                }
            )
        parts[there]["links"].append(
            {**extra, "link": f"{bridges[key]}_rx.frames -> {reader}.{input_name}"}
        )
    for node, part in parts.items():
        run = dict(part.get("run") or {})
        metadata = dict(run.get("metadata") or {})
        metadata["stream_hosts"] = json.dumps(stream_hosts[node], sort_keys=True)
        metadata["node"] = node
        run["metadata"] = metadata
        part["run"] = run
    return parts


def _plan_of(text: str, name: str) -> Any:
    return plan_pipeline(load_pipeline(name, text=text))


class ClusterPipeline:
    """A pipeline file run across a Ray cluster's nodes (``rigd.init(address=...)`` first).

    Args:
        path: the pipeline file; every actor names its ``node:``.
        run_id: the run's id (default: the time).
        metadata: run metadata for every node's run file (as ``rigd run --meta``),
            over the pipeline file's ``run: metadata``.
        port_range: the tcp ports the bridges bind (one per cross-node stream,
            on the sending node), as ``(first, last)``, both included: for a
            firewall that opens a range. ``None`` (the default): ephemeral ports,
            chosen by each sending node's system.

    Raises:
        ValueError: a ``port_range`` that is not two ports, first <= last.

    ``start`` places and starts every node's part (all or none), ``wait``
    waits for the run's end, ``stop`` stops it cleanly; ``state`` is
    ``running``, ``stopped`` or ``failed`` (``failure`` says why).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        run_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        port_range: tuple[int, int] | None = None,
    ):
        backend = ray_backend()
        if backend is None:
            raise RuntimeError(
                "a cluster pipeline runs on Ray: call rigd.init(address='ray://HOST:PORT') first"
            )
        self._ray = backend
        self.text = Path(path).read_text()
        self._name = str(path)  # what its problems name it by
        self.run_id = run_id or time.strftime("%Y%m%dT%H%M%S")
        self.metadata = dict(metadata or {})
        self.port_range = check_range(port_range)
        self.state = "created"
        self.failure: str | None = None
        self._group: Any = None
        self._nodes: dict[str, Any] = {}
        self._stopped = threading.Event()
        self._ended = threading.Event()
        self._monitor: threading.Thread | None = None
        self._lock = threading.Lock()
        self._report: RunReport | None = None
        self._started = 0.0

    def start(self) -> None:
        """Place every node's supervisor (one placement group), then start each
        part: all of them run, or none (``_cluster_start``).

        Raises:
            ValueError: an actor names no node, or a node no live node has; too
                few free ports in ``port_range`` on a host.
            ResourceUnavailableError: the cluster could not place them all.
            PipelineFailedError: a node's part failed to start (the message says
                where and why); every file made was sealed ``aborted``.
        """
        nodes = self._ray.alive_nodes()
        hosts: dict[str, str] = {}
        for node in nodes:
            for resource in node["resources"]:
                hosts.setdefault(resource, node["ip"])
        names = sorted(split_pipeline(self.text, hosts, name=self._name))
        self._group = place(self._ray, names, _PLACE_TIMEOUT_S)
        try:
            cls = remote(NodeSupervisor)
            for index, name in enumerate(names):
                strategy = PlacementGroupSchedulingStrategy(self._group, index)
                self._nodes[name] = cls.options(
                    num_cpus=0, resources={name: 0.001}, scheduling_strategy=strategy
                ).remote()
            # Each sending host chooses its bridges' ports (free there), then the split
            # tells the receivers where to connect.
            needed = bridges_from(split_pipeline(self.text, hosts, name=self._name))
            ports = choose_ports(self._nodes, hosts, needed, self.port_range)
            parts = split_pipeline(self.text, hosts, ports, name=self._name)
            start_parts(self._nodes, parts, hosts, self.run_id, self.metadata, self.port_range)
        except BaseException:
            self._teardown()
            raise
        self.state = "running"
        self._started = time.monotonic()
        self._monitor = threading.Thread(target=self._watch, name="rigd-cluster", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        # One question per node in flight at a time (``_cluster_watch``); a lost node,
        # or anything unforeseen here, fails the run: this thread never ends silently.
        try:
            while not self._stopped.wait(POLL_S):
                answer = poll_nodes(dict(self._nodes))
                if isinstance(answer, Lost):
                    self._lost(answer.node, answer.why)
                    return
                if answer:
                    self._ended.set()
                    return
        except Exception as exc:  # said in the run's failure
            log.exception("cluster pipeline %s: watching the nodes failed", self.run_id)
            self._fail(f"watching the nodes failed: {type(exc).__name__}: {exc}")

    def _lost(self, name: str, why: str) -> None:
        self._fail(f"node {name} lost: {why}", name)

    def _fail(self, text: str, lost_node: str | None = None) -> None:
        """Fail the run: the lost node's supervisor is killed, the others note
        ``text`` in their recorders' ledgers, then stop (their files sealed)."""
        if self._stopped.is_set():
            return  # a stop under way: its report stands
        with self._lock:
            if self.state != "running":
                return
            log.error("cluster pipeline %s: %s; stopping the run", self.run_id, text)
            self.state = "failed"
            self.failure = text
            lost = self._nodes.pop(lost_node, None) if lost_node is not None else None
            if lost is not None:
                try:
                    self._ray.kill(lost)  # hung: ended; dead: nothing to do
                except Exception:  # gone with its node
                    log.debug("the lost node supervisor could not be killed", exc_info=True)
            refs = [node.note.remote(text) for node in self._nodes.values()]
            deadline = time.monotonic() + _NOTE_TIMEOUT_S
            for ref in refs:
                try:
                    get(ref, timeout=max(0.1, deadline - time.monotonic()))
                except Exception as exc:  # noqa: BLE001 - the others are stopped anyway
                    log.error("could not note the loss on a node: %s", exc)
            self._ended.set()
        self.stop(timeout=_STOP_AFTER_LOSS_S)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every node's part ended on its own, or the run failed (a
        node lost: ``state`` is ``failed``, ``failure`` says which and why), or
        a stop ended it; True if so within ``timeout`` s (``None``: no limit).

        The answer comes from the run's watcher thread, which asks each node
        at most one question at a time (``_cluster_watch``): waiting sends
        nothing to the nodes, however often it is called.
        """
        if self.state != "running":
            return True
        return self._ended.wait(timeout)

    def stop(self, timeout: float = 30.0) -> RunReport:
        """Stop every node's part at once (each drains its links), seal the files."""
        with self._lock:
            if self._report is not None:
                return self._report
            self._stopped.set()
            reports = []
            failure = self.failure if self.state == "failed" else None
            refs = {name: node.stop.remote(timeout, failure) for name, node in self._nodes.items()}
            for name, ref in refs.items():
                try:
                    reports.append(get(ref, timeout=timeout + 60))
                except Exception as exc:  # noqa: BLE001 - report what the others did
                    log.error(
                        "cluster pipeline %s: node %s did not stop: %s", self.run_id, name, exc
                    )
            self._teardown()
            if self.state != "failed":
                self.state = "stopped"
            self._ended.set()
            self._report = RunReport(
                run_id=self.run_id,
                state=RunState(self.state),
                duration_s=time.monotonic() - self._started if self._started else 0.0,
                files=tuple(f for r in reports for f in r.get("files", ())),
                frames={k: v for r in reports for k, v in r.get("frames", {}).items()},
                dropped={k: v for r in reports for k, v in r.get("dropped", {}).items()},
                restarts={k: v for r in reports for k, v in r.get("restarts", {}).items()},
                failure=self.failure,
                actor_lines={k: v for r in reports for k, v in r.get("actor_lines", {}).items()},
            )
            return self._report

    def kill(self) -> None:
        """Kill every node's supervisor now, without draining: a forced stop (a
        second Ctrl-C of ``rigd run`` while the nodes stop). Their actors end
        with them and remove their rings; their files are left unsealed
        (``rigd recover`` repairs them). Takes no lock: a ``stop`` under way, in
        another thread, then finds its calls answered (the actors died)."""
        self._stopped.set()
        if self.state == "running":
            self.state = "failed"
            self.failure = self.failure or "killed (a forced stop): files left unsealed"
        for node in list(self._nodes.values()):
            try:
                self._ray.kill(node)
            except Exception:  # noqa: BLE001 - gone already
                continue
        self._ended.set()

    def _teardown(self) -> None:
        for node in self._nodes.values():
            try:
                self._ray.kill(node)
            except Exception:  # noqa: BLE001 - gone with its node
                continue
        self._nodes.clear()
        if self._group is not None:
            self._ray.release(self._group)
            self._group = None
