"""``rigd.get_runtime_context()``: where the calling code runs (Ray's RuntimeContext).

On one machine the node is this machine, and the job is the session: every
driver, actor and task of one ``rigd.init()`` shares its job id.
"""

from __future__ import annotations

import hashlib
import os
import socket
from typing import Any

from rigd.actors import _context, _session
from rigd.actors._api import get_gpu_ids

__all__ = ["RuntimeContext", "get_runtime_context"]


def _hex(text: str, size: int) -> str:
    return hashlib.blake2b(text.encode(), digest_size=size).hexdigest()


class RuntimeContext:
    """What the calling code may ask about where it runs.

    Ids are hex strings, as Ray's ``.hex()`` forms: the job id (4 bytes), the
    node id (28 bytes) and the actor id are stable for their lifetime.
    """

    def get_job_id(self) -> str:
        """The session's id (one rigd session is one job)."""
        return _hex(_session.get_runtime().session_dir, 4)

    def get_node_id(self) -> str:
        """This machine's id."""
        try:
            with open("/etc/machine-id") as f:
                machine = f.read().strip()
        except OSError:
            machine = ""
        return _hex(f"{socket.gethostname()}/{machine}", 28)

    def get_worker_id(self) -> str:
        """This process's id in the session."""
        runtime = _session.get_runtime()
        return _hex(f"{runtime.session_dir}/{runtime.worker_id}/{os.getpid()}", 28)

    def get_actor_id(self) -> str | None:
        """The id of the actor this code runs in; ``None`` outside an actor."""
        info = _context.actor_info
        return info.actor_id if info is not None else None

    def get_actor_name(self) -> str | None:
        """The actor's name (``.options(name=...)``); ``None`` if unnamed or outside one."""
        info = _context.actor_info
        return info.name if info is not None else None

    def get_task_id(self) -> str | None:
        """The id of the actor call or task running; ``None`` in a driver."""
        call = _context.current_call.get()
        if call is not None:
            return call
        serial = _context.serial_call
        info = _context.actor_info
        if serial is not None and info is not None:
            task_id, call_id = serial
            return task_id or f"{info.actor_id}-{call_id:x}"
        task = _context.current_task
        return f"{self.get_job_id()}-{task:x}" if task is not None else None

    @property
    def namespace(self) -> str:
        """The namespace named actors are created in and looked up in."""
        return _session.get_runtime().namespace

    def get_namespace(self) -> str:
        """The namespace (as the ``namespace`` property)."""
        return self.namespace

    @property
    def was_current_actor_reconstructed(self) -> bool:
        """Whether this actor process is a restart (after a crash or kill)."""
        info = _context.actor_info
        return info is not None and info.restarts > 0

    def get_accelerator_ids(self) -> dict[str, list[str]]:
        """The GPUs assigned to this actor or task, as Ray gives them (strings)."""
        return {"GPU": [str(i) for i in get_gpu_ids()]}

    @property
    def job_id(self) -> str:
        """Ray's older spelling of ``get_job_id()``."""
        return self.get_job_id()

    @property
    def node_id(self) -> str:
        """Ray's older spelling of ``get_node_id()``."""
        return self.get_node_id()

    @property
    def actor_id(self) -> str | None:
        """Ray's older spelling of ``get_actor_id()``."""
        return self.get_actor_id()

    @property
    def task_id(self) -> str | None:
        """Ray's older spelling of ``get_task_id()``."""
        return self.get_task_id()

    def get(self) -> dict[str, Any]:
        """The context as a dict: job, node, namespace, and actor or task ids."""
        facts: dict[str, Any] = {
            "job_id": self.get_job_id(),
            "node_id": self.get_node_id(),
            "namespace": self.namespace,
        }
        if (actor_id := self.get_actor_id()) is not None:
            facts["actor_id"] = actor_id
        if (task_id := self.get_task_id()) is not None:
            facts["task_id"] = task_id
        return facts


def get_runtime_context() -> RuntimeContext:
    """Return the runtime context of the calling code (starts a session if none)."""
    _session.get_runtime()
    return RuntimeContext()
