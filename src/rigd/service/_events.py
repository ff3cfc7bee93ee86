"""The daemon's events: state changes and run starts and ends, to whoever subscribed.

``GET /v1/events`` streams them as server-sent events. An event is a JSON
object with ``type`` (``state``, ``run``, ``trigger``, ``disk``, ``drops``
(a source dropped frames: its ring was full), ``progress``, ``shutdown``),
``time`` (ISO 8601 UTC) and ``state`` (the daemon's, after the event), plus
what the type carries.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["Event", "EventBus", "now"]

log = logging.getLogger(__name__)

#: One event, as ``GET /v1/events`` sends it (JSON).
Event = dict[str, Any]


def now() -> str:
    """The time now, ISO 8601 UTC with milliseconds (events' and runs' times)."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class EventBus:
    """Subscribers and the events published to them (from any thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Event], None]] = []

    def subscribe(self, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``callback(event)`` (from any thread) on every event; returns the
        function that unsubscribes."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def publish(self, kind: str, state: str, **data: Any) -> None:
        """Send ``{"type": kind, "time": ..., "state": state, **data}`` to every subscriber;
        one that raises is logged and the rest still get it."""
        event: Event = {"type": kind, "time": now(), "state": state, **data}
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                callback(event)
            except Exception:
                log.exception("an event subscriber failed")
