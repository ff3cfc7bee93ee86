"""The head's task scheduler: the queue of tasks, the task workers, and the
CPUs and GPUs each running task holds.

CPU tasks run on a pool of task workers (as many busy as there are CPUs);
a GPU task runs in a worker of its own, started with its GPUs in
``CUDA_VISIBLE_DEVICES`` and retired after the task. A task waiting in
``rigd.get`` gives its CPU back while it waits.
"""

from __future__ import annotations

import collections
import itertools
import time
from collections.abc import Callable
from typing import Any

from rigd._exceptions import ResourceUnavailableError, TaskCancelledError, WorkerCrashedError
from rigd.actors._events import TaskLog, TaskState
from rigd.actors._from_head import CancelRunning, HeadItem, RunTask, Terminate
from rigd.actors._head_records import Peer, TaskRecord, Worker
from rigd.actors._messages import ExitKind, TerminateMode
from rigd.actors._protocol import encode
from rigd.actors._resources import Resources
from rigd.actors._to_head import SubmitTask, TaskDone, TaskItem
from rigd.actors._worker_pool import WorkerPool, gpu_environment

__all__ = ["TaskScheduler"]

#: ``reply(peer, req_id, payload, ok)``: answer a request.
Reply = Callable[[Peer, int, Any, bool], None]


class TaskScheduler:
    """Queues tasks and runs each on a worker once its CPUs and GPUs are free.

    Args:
        pool: the workers to run tasks on.
        resources: the CPUs and GPUs tasks reserve.
        reply: answers a submitter's request.
        send: sends a message to a connected process.
        task_log: where a task's RUNNING event is recorded.
        on_freed: called when a task frees GPUs or CPUs (pending actors may start).
        stopping: whether the session is ending.
    """

    def __init__(
        self,
        pool: WorkerPool,
        resources: Resources,
        reply: Reply,
        send: Callable[[Peer, tuple[Any, ...]], None],
        task_log: TaskLog,
        on_freed: Callable[[], None],
        stopping: Callable[[], bool],
    ) -> None:
        self._pool = pool
        self._resources = resources
        self._reply = reply
        self._send = send
        self._task_log = task_log
        self._on_freed = on_freed
        self._stopping = stopping
        self._tasks: collections.deque[TaskRecord] = collections.deque()
        self._ids = itertools.count(1)
        self._workers: list[Worker] = []
        self._idle: list[Worker] = []

    def workers(self) -> list[Worker]:
        """The task workers (idle, busy and starting)."""
        return list(self._workers)

    def submit(self, peer: Peer, req_id: int, request: SubmitTask) -> None:
        """Queue a task (refused at once if no amount of waiting could run it)."""
        problem = self._resources.impossible(
            f"task {request.name}", request.num_cpus, request.num_gpus
        )
        if problem is not None:
            self._reply(peer, req_id, ResourceUnavailableError(problem), False)
            return
        self._tasks.append(
            TaskRecord(
                next(self._ids),
                peer,
                req_id,
                request.fn_id,
                request.fn_body,
                request.name,
                request.body,
                float(request.num_cpus),
                request.max_retries,
                request.event_id,
                float(request.num_gpus),
                streaming=request.streaming,
                namespace=request.namespace,
                retry_exceptions=request.retry_exceptions,
            )
        )
        self.dispatch()

    def worker_connected(self, worker: Worker) -> None:
        """A task worker connected: it is idle now."""
        if worker in self._workers and worker.task is None:
            self._idle.append(worker)
            self.dispatch()

    def dispatch(self) -> None:
        """Start every queued task whose resources are free."""
        self._dispatch_gpu_tasks()
        while not self._stopping():
            task = next((t for t in self._tasks if t.num_gpus == 0), None)
            if task is None or task.num_cpus > self._resources.cpus_free:
                return
            if not self._idle:
                pool = [w for w in self._workers if not w.gpu_task]
                starting = sum(1 for w in pool if w.peer is None)
                busy = sum(1 for w in pool if w.task is not None and not w.blocked)
                if starting == 0 and busy < max(1, int(self._resources.total_cpus)):
                    worker = self._pool.take()
                    self._workers.append(worker)
                    if worker.peer is not None:
                        self._idle.append(worker)
                        continue
                return
            worker = self._idle.pop()
            self._tasks.remove(task)
            self._resources.take_cpus(task.num_cpus)
            worker.task = task
            self._run(worker, task)

    def _run(self, worker: Worker, task: TaskRecord) -> None:
        if task.event_id is not None:
            self._task_log.add([(task.event_id, TaskState.RUNNING, time.time(), None, None, None)])
        order = RunTask(
            task.task_id,
            task.fn_id,
            task.fn_body,
            task.name,
            task.body,
            task.streaming,
            task.namespace,
            task.retry_exceptions,
            task.retries_left,
            task.items_sent,
        )
        self._pool.send(worker, encode(order))

    def _dispatch_gpu_tasks(self) -> None:
        """Start each queued GPU task whose CPUs and GPUs are free, in a new process.

        A GPU task runs in a worker of its own, started with its GPUs in
        ``CUDA_VISIBLE_DEVICES`` (CUDA reads it once, at load) and retired
        after the task; a GPU task that must wait does not hold back the CPU
        tasks queued behind it.
        """
        for task in [t for t in self._tasks if t.num_gpus > 0]:
            if self._stopping() or task.num_cpus > self._resources.cpus_free:
                return
            gpus = self._resources.allocate_gpus(task.num_gpus)
            if gpus is None:
                return  # waits, as in Ray, until an actor or task frees a GPU
            self._tasks.remove(task)
            task.gpus = gpus
            self._resources.take_cpus(task.num_cpus)
            worker = self._pool.spawn(gpu_environment(gpus))
            worker.task = task
            worker.gpu_task = True
            self._workers.append(worker)
            self._run(worker, task)

    def _release_gpus(self, task: TaskRecord) -> None:
        if task.gpus:
            self._resources.release_gpus(task.gpus, task.num_gpus)
            task.gpus = ()
            self._on_freed()

    def _retire(self, worker: Worker, task: TaskRecord) -> None:
        """Take ``worker`` off its task and out of the pool; give its resources back."""
        worker.task = None
        if not worker.blocked:
            self._resources.give_cpus(task.num_cpus)
        self._release_gpus(task)
        self._workers.remove(worker)
        if worker in self._idle:
            self._idle.remove(worker)

    def worker_exited(self, worker: Worker) -> None:
        """A worker ended: its task is retried, or its submitter gets the error."""
        if worker not in self._workers:
            return
        task = worker.task
        if task is None:
            self._workers.remove(worker)
            if worker in self._idle:
                self._idle.remove(worker)
        else:
            self._retire(worker, task)
            if task.retries_left != 0 and not self._stopping():
                task.retries_left -= 1
                self._tasks.appendleft(task)
            else:
                self._reply(
                    task.submitter,
                    task.req_id,
                    WorkerCrashedError(
                        f"the worker running task {task.name} died: {worker.exit_detail}"
                    ),
                    False,
                )
        self.dispatch()

    def cancel(self, peer: Peer, req_id: int, force: bool) -> None:
        """Cancel ``peer``'s task ``req_id``: drop it if queued, else interrupt it.

        A running task is interrupted (the worker raises KeyboardInterrupt in
        it, as Ray does), or with ``force`` its worker is killed and replaced,
        its GPU process too.
        """
        for worker in list(self._workers):
            task = worker.task
            if task is None or task.submitter is not peer or task.req_id != req_id:
                continue
            if not force:
                self._pool.send(worker, encode(CancelRunning(task.task_id)))
                return
            self._retire(worker, task)
            worker.blocked = False
            worker.exit_kind = ExitKind.KILLED
            worker.exit_detail = f"its task {task.name} was cancelled with force=True"
            worker.popen.kill()
            self._reply(
                peer,
                req_id,
                TaskCancelledError(
                    f"the task {task.name} was cancelled with rigd.cancel(force=True); "
                    "its worker was killed"
                ),
                False,
            )
            self.dispatch()
            return
        for task in self._tasks:
            if task.submitter is peer and task.req_id == req_id:
                self._tasks.remove(task)
                self._reply(
                    peer,
                    req_id,
                    TaskCancelledError(f"the task {task.name} was cancelled with rigd.cancel"),
                    False,
                )
                return

    def done(self, worker: Worker, report: TaskDone) -> None:
        """A worker finished its task: the reply goes to the submitter."""
        if worker.task is None or worker.task.task_id != report.task_id:
            return
        task = worker.task
        worker.task = None
        if not worker.blocked:
            self._resources.give_cpus(task.num_cpus)
        worker.blocked = False
        self._reply(task.submitter, task.req_id, report.reply_body, True)
        if worker.gpu_task:
            # Its CUDA context holds the GPU: the process ends with its task.
            self._workers.remove(worker)
            worker.exit_kind = ExitKind.SHUTDOWN
            order = Terminate(TerminateMode.PROMPT.value, ExitKind.SHUTDOWN.value)
            self._pool.send(worker, encode(order))
            self._release_gpus(task)
        else:
            self._idle.append(worker)
        self.dispatch()
        self._on_freed()

    def item(self, worker: Worker, report: TaskItem) -> None:
        """An item of a generator task: on to the submitter, on the same
        ordered connection as the task's final reply."""
        task = worker.task
        if task is not None and task.task_id == report.task_id:
            task.items_sent += 1
            self._send(task.submitter, encode(HeadItem(task.req_id, report.body)))

    def blocked(self, worker: Worker) -> None:
        """The worker's task waits in ``rigd.get``: its CPU is free meanwhile.

        Else two nested tasks on two CPUs would deadlock.
        """
        if worker.task is not None and not worker.blocked:
            worker.blocked = True
            self._resources.give_cpus(worker.task.num_cpus)
            self.dispatch()

    def unblocked(self, worker: Worker) -> None:
        """The worker's task runs again: it holds its CPU again."""
        if worker.task is not None and worker.blocked:
            worker.blocked = False
            self._resources.take_cpus(worker.task.num_cpus)
