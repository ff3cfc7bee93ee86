"""Names Ray keeps in ``ray.actor``: ``exit_actor`` and the typing helpers."""

from rigd.actors import ActorClass, ActorHandle, ActorMethod, ActorProxy, exit_actor

__all__ = ["ActorClass", "ActorHandle", "ActorMethod", "ActorProxy", "exit_actor"]
