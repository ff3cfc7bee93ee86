"""The session's state, as Ray's ``ray.util.state`` offers it."""

from rigd.actors._state import ActorInfo, list_actors

__all__ = ["ActorInfo", "list_actors"]
