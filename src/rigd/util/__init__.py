"""Ray's ``ray.util`` names that Ray code uses with actors and tasks."""

from rigd.util import scheduling_strategies

__all__ = ["scheduling_strategies"]
