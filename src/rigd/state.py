"""The session's state, as Ray's ``ray.util.state`` offers it."""

from rigd.actors._state import ActorInfo, TaskInfo, list_actors, list_tasks

__all__ = ["ActorInfo", "TaskInfo", "list_actors", "list_tasks"]
