"""Ray's ``JobConfig`` (``ray.job_config.JobConfig``), as far as it means something on one machine.

Ray code passes ``ray.init(job_config=JobConfig(...))``. Of its fields,
``ray_namespace`` (the driver's namespace) means the same on one machine;
``metadata`` is accepted and kept on the object (rigd has no job table to
show it in). The others configure
Ray's cluster (Java workers, runtime environments shipped to nodes, the
raylet) and are refused with a ``ValueError`` that names them.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JobConfig"]

#: Ray's fields rigd cannot honour, and why.
_REFUSED = {
    "jvm_options": "Java workers",
    "code_search_path": "Java and C++ workers",
    "runtime_env": "runtime environments (the workers run in this Python environment)",
    "client_job": "Ray Client",
    "default_actor_lifetime": "a job-wide default lifetime (pass lifetime= per actor)",
    "_system_config": "Ray's internal tuning",
    "_py_driver_sys_path": "a driver's path shipped to Ray's workers",
}


class JobConfig:
    """The job's settings, as Ray's ``JobConfig``.

    Args:
        ray_namespace: the namespace of this driver's named actors and groups
            (as ``rigd.init(namespace=...)``).
        metadata: the job's metadata, strings to strings.
        **others: Ray's other fields: each refused unless left at its default.

    Raises:
        ValueError: one of Ray's fields with no meaning on one machine is
            set, or an unknown field is passed.
        TypeError: ``metadata`` is not a dict of strings.
    """

    def __init__(
        self,
        ray_namespace: str | None = None,
        metadata: dict[str, str] | None = None,
        **others: Any,
    ) -> None:
        for key, value in others.items():
            if key not in _REFUSED:
                raise ValueError(
                    f"JobConfig has no field {key!r}; rigd takes ray_namespace and metadata"
                )
            if value not in (None, [], {}):
                raise ValueError(
                    f"JobConfig({key}=...) configures {_REFUSED[key]}, which a one-machine "
                    f"rigd session does not have; leave it out (rigd takes ray_namespace "
                    f"and metadata)"
                )
        if metadata is not None and (
            not isinstance(metadata, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
        ):
            raise TypeError(
                f"JobConfig(metadata=...) must be a dict of str to str, got {metadata!r}"
            )
        self.ray_namespace = ray_namespace
        self.metadata = dict(metadata or {})

    def __repr__(self) -> str:
        return f"JobConfig(ray_namespace={self.ray_namespace!r}, metadata={self.metadata!r})"
