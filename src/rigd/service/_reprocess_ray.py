"""``rigd reprocess --address``: one Ray task per file, checked, waited for, cancelled.

Before any task is submitted, the cluster must have a node whose resources
hold one file's task (the pipeline's ``num_cpus`` and ``num_gpus`` added
up): Ray would keep such a task pending for ever (it waits for a node that
may join), so it is refused at once. A task whose worker dies (``kill -9``,
the OOM killer) is a failed row saying what it left, as far as this machine
sees: its output, left unsealed, and the fix (``rigd recover FILE``); or
that it made none (every node is this machine); or that its output, if any,
is on the machine that ran it (``_left_unsealed``). An interrupt (Ctrl-C, SIGTERM) cancels the
pending tasks (``rigd.actors.cancel``, Ray's ``ray.cancel``: a running task
gets ``KeyboardInterrupt``, so ``replay_file`` seals its file and marks it
failed), waits for them at most ``CANCEL_WAIT_S``, then kills what is left
(``force=True``).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rigd._exceptions import TaskCancelledError
from rigd.service._stop_signals import STOP_SIGNALS

__all__ = ["CANCEL_WAIT_S", "Job", "check_fits", "replay_on_ray"]

#: How long (s) cancelled tasks are waited for before their workers are killed.
CANCEL_WAIT_S = 30.0

#: One file's task: (index, run file, run id, its output paths, its replay's id).
Job = tuple[int, str, str, Sequence[Path], str]
Finished = Callable[[int, dict[str, Any]], None]


def check_fits(cpus: float, gpus: float, nodes: Sequence[Mapping[str, Any]]) -> None:
    """Refuse a task of ``cpus`` CPUs and ``gpus`` GPUs that no live node of ``nodes``
    (``rigd.actors.nodes()``, Ray's ``ray.nodes()``) can hold.

    Raises:
        ValueError: no such node; names the need, each node's resources, and the fix.
    """
    alive = [n for n in nodes if n.get("Alive", n.get("alive", False))]
    for node in alive:
        have = node.get("Resources") or {}
        if float(have.get("CPU", 0)) >= cpus and float(have.get("GPU", 0)) >= gpus:
            return
    described = "; ".join(
        f"{n.get('NodeManagerAddress', '?')} ({str(n.get('NodeID', '?'))[:8]}): "
        f"{float((n.get('Resources') or {}).get('CPU', 0)):g} CPUs, "
        f"{float((n.get('Resources') or {}).get('GPU', 0)):g} GPUs"
        for n in alive
    )
    raise ValueError(
        f"each file's Ray task needs {cpus:g} CPUs and {gpus:g} GPUs (the pipeline's actors' "
        f"num_cpus and num_gpus added up), and no node of the cluster has that many "
        f"({described or 'no live node'}); nothing was submitted. Lower the pipeline's "
        "num_cpus/num_gpus, or add a node that has them to the cluster"
    )


def replay_on_ray(
    jobs: Sequence[Job],
    args: Mapping[str, Any],
    address: str,
    cpus: float,
    gpus: float,
    finished: Finished,
    *,
    ready: Callable[[], None] | None = None,
) -> None:
    """Replay each of ``jobs`` as a Ray task of ``replay_file`` (``args``: its other
    arguments, by name); ``finished(index, result)`` as each ends. ``ready()`` is
    called once connected and ``check_fits`` passed, before any task (it makes
    the output directory: a refused job leaves nothing behind).

    Raises:
        ValueError: no node can hold one task (``check_fits``); nothing submitted.
        KeyboardInterrupt: interrupted; every task was cancelled and waited for
            (``finished`` was called for each that ended), the rest are the caller's.
    """
    from rigd.actors import get, init, nodes, ray_backend, remote, shutdown, wait
    from rigd.pipeline import replay_file

    connected = ray_backend() is not None
    if not connected:
        _init_keeping_signals(init, address)
    try:
        check_fits(cpus, gpus, nodes())
        if ready is not None:
            ready()
        task = remote(replay_file).options(num_cpus=cpus, num_gpus=gpus, max_retries=0)
        pending: dict[Any, Job] = {}
        try:
            for job in jobs:
                _, path, run_id, _, replay = job
                ref = task.remote(**args, run_file=path, run_id=run_id, in_task=True, job=replay)
                pending[ref] = job
            while pending:
                (ref,), _ = wait(list(pending), num_returns=1)
                job = pending.pop(ref)
                finished(job[0], _outcome(get, ref, job))
        except KeyboardInterrupt:
            _cancel(pending, finished)
            raise
    finally:
        if not connected:
            shutdown()


def _init_keeping_signals(init: Callable[..., Any], address: str) -> None:
    """``rigd.init(address=...)``, with this process's handlers of the stop signals
    (``_stop_signals.STOP_SIGNALS``: SIGINT, SIGTERM, SIGHUP) put back after: a
    Ray driver's ``ray.init`` puts its own SIGTERM handler in
    (it ends the driver at once, leaving the tasks' files unsealed)."""
    if threading.current_thread() is not threading.main_thread():
        init(address=address)
        return
    kept = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        init(address=address)
    finally:
        for sig, handler in kept.items():
            signal.signal(sig, handler if handler is not None else signal.SIG_DFL)


def _outcome(get: Callable[[Any], Any], ref: Any, job: Job) -> dict[str, Any]:
    """The task's result, or a failed row naming why (a worker that died: its output)."""
    try:
        return dict(get(ref))
    except TaskCancelledError:
        return _row(job, "interrupted", _interrupted(job))
    except Exception as exc:  # noqa: BLE001 - the task's worker died; its row says so
        text = str(exc).splitlines()[0] if str(exc) else ""
        return _row(job, "failed", f"{type(exc).__name__}: {text}{_left_unsealed(job)}")


def _cancel(pending: dict[Any, Job], finished: Finished) -> None:
    """Cancel every pending task, wait for them (``CANCEL_WAIT_S``), kill the rest."""
    from rigd.actors import cancel, get, wait

    for ref in pending:
        with contextlib.suppress(Exception):
            cancel(ref)  # a running task gets KeyboardInterrupt: its file is sealed, failed
    deadline = time.monotonic() + CANCEL_WAIT_S
    while pending and time.monotonic() < deadline:
        left = max(0.0, deadline - time.monotonic())
        ready, _ = wait(list(pending), num_returns=1, timeout=left)
        for ref in ready:
            job = pending.pop(ref)
            finished(job[0], _outcome(get, ref, job))
    for ref, job in pending.items():
        with contextlib.suppress(Exception):
            cancel(ref, force=True)
        error = (
            f"interrupted; its Ray task did not stop within {CANCEL_WAIT_S:g} s and its "
            f"worker was killed{_left_unsealed(job)}"
        )
        finished(job[0], _row(job, "interrupted", error))
    pending.clear()


def _interrupted(job: Job) -> str:
    from rigd.storage import made_by

    there = [str(p) for p in job[3] if made_by(p, job[4])]
    if there:
        return (
            f"interrupted (its Ray task cancelled); what it replayed is kept in "
            f"{', '.join(there)}, marked run_state: failed"
        )
    return "interrupted (its Ray task cancelled) before it wrote an output here"


def _left_unsealed(job: Job) -> str:
    """What a task whose worker died left, as this machine can see it: its own
    output (``rigd.storage.made_by``: not another job's of the same name),
    unsealed; none made; or, where the task may have run on another machine,
    that its output cannot be seen from here."""
    from rigd.storage import check_sealed, made_by

    targets = list(job[3])
    if not targets:
        return ""
    mine = [p for p in targets if made_by(p, job[4])]
    for target in mine:
        try:
            check_sealed(target)
        except ValueError:
            return (
                f"; its output {target} is left unsealed (run_state: recording): once no "
                f"task writes it, seal it with `rigd recover {target}`"
            )
    if mine:
        return f"; its output {', '.join(map(str, mine))} was sealed before its worker died"
    names = ", ".join(map(str, targets))
    others = [p for p in targets if p.exists()]
    if others:
        return f"; it made no output ({', '.join(map(str, others))} is another job's)"
    if _one_machine():
        return f"; it made no output ({names} was not created)"
    return (
        f"; no output {names} here: its task may have run on another machine, which "
        "writes its --out on its own disk unless this one is shared; if the file is there, "
        "seal it there with `rigd recover FILE`"
    )


def _one_machine() -> bool:
    """Whether every node of the cluster (alive or not) is this machine (its host name):
    then a task's output is on this machine's disk, seen here."""
    import socket

    from rigd.actors import nodes

    try:
        names = {str(n.get("NodeManagerHostname", "")) for n in nodes()}
    except Exception:  # noqa: BLE001 - a cluster that does not answer: cannot tell
        return False
    return names == {socket.gethostname()}


def _row(job: Job, state: str, error: str) -> dict[str, Any]:
    return {"file": job[1], "state": state, "error": error}
