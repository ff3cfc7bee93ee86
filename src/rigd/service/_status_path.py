"""``GET /v1/status`` answered beneath FastAPI: the request lab software polls.

A rig's scripts and dashboards poll the status many times a second while a
camera runs; on a 2-core rig PC every microsecond the event loop spends on
one of them delays the others (``bench/service.py``: 20 clients polling
every 100 ms arrive together, and the last waits for the 19 before it).
Through FastAPI a status request cost the loop ~370 us of CPU during a run:
routing, dependency solving (the token and the daemon), the request and
response objects and the middleware stack; here it costs ~160 us
(BENCHMARKS.md, issue 23). This ASGI layer answers the one hot
request itself: the method and path compared, the bearer token checked
(in constant time, as ``_deps.authorized``), and the status encoded as
FastAPI's ``JSONResponse`` encodes it, once per change: the daemon's monitor
samples twice a second, so most polls find the status equal to the last one
(a dict comparison, in C) and are sent the bytes encoded then. Never stale:
the status is read for every request. Served by ``rigd serve`` (``_serve``),
outside ``create_app``'s app.

Anything else, a status request without the right token included, goes on
to the app unchanged, so its answers (401 and its ``WWW-Authenticate``,
405, the OpenAPI schema) stay FastAPI's own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rigd.service._asgi import ASGIApp, Receive, Scope, Send
from rigd.service._token import token_matches

__all__ = ["STATUS_PATH", "StatusPath", "encode"]

#: The path served here; the FastAPI route of the same path documents it.
STATUS_PATH = "/v1/status"
_JSON = (b"content-type", b"application/json")


class StatusPath:
    """Answer an authorized ``GET /v1/status`` with ``status()`` as JSON; pass the rest on.

    Args:
        app: the ASGI app every other request goes to.
        status: the status now (``Daemon.status``).
        token: the bearer token a request must carry.
    """

    def __init__(self, app: ASGIApp, status: Callable[[], dict[str, Any]], token: str) -> None:
        self.app = app
        self._status = status
        self._token = token
        self._last: tuple[dict[str, Any], bytes] = ({}, b"")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == STATUS_PATH
            and scope["method"] == "GET"
            and self._authorized(scope)
        ):
            status = self._status()
            last, body = self._last
            if status != last:
                body = encode(status)
                self._last = (status, body)
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body)), _JSON],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, credentials = value.decode("latin-1").partition(" ")
                credentials = credentials.strip()
                return scheme.lower() == "bearer" and token_matches(credentials, self._token)
        return False


def encode(content: Any) -> bytes:
    """``content`` as the bytes Starlette's ``JSONResponse`` sends (compact UTF-8 JSON)."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode()
