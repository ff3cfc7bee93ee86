"""The program every actor and task worker runs: ``python -m rigd.actors._worker``.

The head starts it with exec (never fork), so the environment the head chose
(``CUDA_VISIBLE_DEVICES`` above all) is in place before any user code or CUDA
library loads. The process then waits for its job from the head: one actor
(``START_ACTOR``) for its whole life, or tasks (``RUN_TASK``) one at a time.

An actor serves its callers on the main thread: it reads a call, runs the
method inline and writes the reply, with no hand-off between threads, which
is what makes a round trip cost tens of microseconds (``_actor_server``).
Its calls to other actors go through the process's ``Runtime`` and its I/O
thread. A task worker runs tasks (``_task_worker``).
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import select
import signal
import sys
import threading
import time
from typing import Any

import cloudpickle

from rigd._proc import pid_alive
from rigd.actors import _session
from rigd.actors._actor_server import ActorServer
from rigd.actors._from_head import StartActor
from rigd.actors._gui import main_loop_of, serve_beside
from rigd.actors._protocol import decode_order
from rigd.actors._runtime import Runtime
from rigd.actors._session_files import cleanup_after_lost_head
from rigd.actors._task_worker import on_sigint, on_task_cancel, serve_tasks

__all__ = ["main"]

_PR_SET_PDEATHSIG = 1
_PR_SET_NAME = 15
#: This worker's job once it has one (its process name), for its log lines.
_job: list[str] = []


def _die_with_parent(session_dir: str, parent_pid: int) -> None:
    """End this worker when the head's process ends, even by SIGKILL; defer a
    SIGTERM or SIGHUP while the head lives.

    The kernel sends SIGTERM when the thread that spawned us (the head's)
    ends (PR_SET_PDEATHSIG). A SIGTERM or SIGHUP while the head's process
    lives came from someone else: most often sent to every process of a
    service or session at once (systemd's default ``KillMode=control-group``,
    ``kill -TERM PID $(pgrep -P PID)``, a closed terminal), when the head
    (``rigd run``, the daemon) was told to stop as well. It is deferred: the
    head stops its actors in order (sources first, readers drain, files
    sealed) and then ends this process. A thread then waits for the head's
    process to end (the head's thread can end a moment before the rest of
    its process): once it has, this worker removes the session's files the
    dead head could not and exits, so an actor whose head is gone still
    ends. SIGKILL ends a worker at once, as before; the lost connection to
    the head ends it too, from its I/O thread, should the main thread be busy
    in native code.
    """
    watching: list[threading.Thread] = []

    def end_with_head() -> None:
        if os.getppid() == parent_pid:  # else it is gone already (and its pid may be reused)
            _wait_for_exit(parent_pid)
        cleanup_after_lost_head(session_dir, os.path.basename(session_dir) + "-", owner_dead=True)
        os._exit(1)

    def on_sigterm(signum: int, frame: object) -> None:
        if os.getppid() != parent_pid or not pid_alive(parent_pid):
            end_with_head()
        if not watching:
            watching.append(threading.Thread(target=end_with_head, daemon=True))
            watching[0].start()
        if _job:  # a spare has nothing to say: it has no job
            logging.getLogger(__name__).info(
                "%s deferred: this worker's head (pid %d) lives and stops it in order; "
                "it ends when its head does (SIGKILL ends it at once)",
                signal.Signals(signum).name,
                parent_pid,
            )

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(signal.SIGHUP, on_sigterm)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the lost head connection still ends us
    if os.getppid() != parent_pid:
        os._exit(1)  # the parent died before prctl took effect


def _wait_for_exit(pid: int) -> None:
    """Block until process ``pid`` has ended (a zombie counts as ended)."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError:  # no pidfds here: look every few milliseconds
        while pid_alive(pid):
            time.sleep(0.005)
        return
    try:
        select.select([fd], [], [])  # readable once the process has ended
    finally:
        os.close(fd)


def _name_process(order: Any) -> None:
    """Name this process after its job in the kernel (``/proc/PID/comm``, 15 bytes):
    ``rigd:NAME`` for a named actor, ``rigd:Class`` for another, ``rigd:task`` for a
    task worker, so ``top``, ``ps -o comm`` and ``pgrep -l rigd:`` say which actor a
    process is (Ray names its workers ``ray::Class``). The command line is left as
    it is (``python -m rigd.actors._worker SESSION ID HEAD_PID``), for tools that
    find a session's workers by it."""
    title = f"rigd:{order.name or order.class_name}" if type(order) is StartActor else "rigd:task"
    _job.append(title)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_NAME, title.encode()[:15], 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux


def main(argv: list[str]) -> None:
    """Run a worker: ``session_dir worker_id parent_pid``."""
    session_dir, worker_id, parent_pid = argv[1], argv[2], int(argv[3])
    _die_with_parent(session_dir, parent_pid)
    # Ctrl-C in a terminal reaches the whole process group; the driver owns
    # the decision to stop, so workers ignore it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=logging.INFO, format=f"rigd worker {worker_id}: %(message)s")
    inbox: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)

    def on_head_message(message: tuple[Any, ...]) -> None:
        if on_task_cancel(message):
            return
        inbox.put(message)
        try:
            os.write(wake_w, b"\0")
        except BlockingIOError:
            pass

    try:
        runtime = Runtime(
            session_dir,
            shm_prefix=os.path.basename(session_dir) + "-",
            namespace="",
            totals={},
            worker_id=worker_id,
            on_head_message=on_head_message,
        )
    except (FileNotFoundError, ConnectionRefusedError):
        # The session ended while this worker was starting (its driver was
        # killed, or shut down): there is nothing to serve.
        os._exit(1)
    _session.attach_worker(runtime)
    first = inbox.get()
    order = decode_order(first)
    _name_process(order)
    if type(order) is StartActor:
        server = ActorServer(runtime, inbox, wake_r, wake_w, order)
        main_loop = main_loop_of(server.instance)  # a GUI actor takes the main thread
        if main_loop is None:
            server.serve()
        else:
            serve_beside(server.serve, main_loop)
    else:
        signal.signal(signal.SIGINT, on_sigint)
        serve_tasks(runtime, inbox, first)


# cloudpickle registers reducers that plain pickle.loads relies on for
# classes sent by value; importing it here makes that explicit.
_ = cloudpickle

if __name__ == "__main__":
    main(sys.argv)
