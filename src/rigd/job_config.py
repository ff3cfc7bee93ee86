"""Ray's ``ray.job_config``: ``JobConfig`` for ``rigd.init(job_config=...)``."""

from rigd.actors import JobConfig

__all__ = ["JobConfig"]
