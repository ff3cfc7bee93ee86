"""ASGI plumbing under the routes: the body-size limit, and long work off the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeVar

from fastapi.responses import JSONResponse

__all__ = ["BodyLimit", "in_thread"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_T = TypeVar("_T")


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413, before the app sees them.

    The body is read here (a client that disconnects mid-body is simply
    dropped: the app never runs) and replayed to the app.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._too_large(send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left mid-request: nothing to do, nothing changed
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, send: Send) -> None:
        response = JSONResponse(
            {
                "detail": f"the request body is larger than {self.limit} bytes; send a "
                "smaller one (or raise max_body_bytes in the service config)"
            },
            status_code=413,
        )
        await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}


async def in_thread(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run ``function`` on a daemon thread of its own and await its result.

    Not the event loop's thread pool: a request the daemon cannot finish (a
    pipeline class whose import blocks) must never keep it from exiting on
    SIGTERM, and a pool's threads are joined at exit.
    """
    future: concurrent.futures.Future[_T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(function(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting request
            future.set_exception(exc)

    threading.Thread(target=run, name="rigd-request", daemon=True).start()
    return await asyncio.wrap_future(future)
