"""``/v1/events`` (server-sent events) and ``/metrics`` (Prometheus): watching without polling."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from rigd.service._daemon import Daemon
from rigd.service._deps import GUARDED, DaemonDep
from rigd.service._errors import errors
from rigd.service._metrics import metrics_text
from rigd.service._progress import progress_schema

__all__ = ["router"]

_KEEPALIVE_S = 15.0

router = APIRouter(tags=["service"], dependencies=GUARDED)


@router.get(
    "/v1/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {"schema": progress_schema()}}},
        **errors(401),
    },
)
async def events(request: Request, daemon: DaemonDep) -> StreamingResponse:
    """Server-sent events: ``state`` on every state change, ``run`` when a run
    starts or ends, ``progress`` once a second while a run goes on (its
    figures under the names of ``/metrics``: the schema here), ``disk`` when
    the disk fills soon, ``trigger``, ``shutdown``; so lab software need not
    poll. The first event is ``status``, the state now."""
    return StreamingResponse(
        _event_stream(daemon, request),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/metrics", response_class=PlainTextResponse, responses=errors(401))
async def metrics(daemon: DaemonDep) -> Response:
    """Prometheus metrics (text format)."""
    body, content_type = metrics_text(daemon)
    return Response(body, media_type=content_type)


def _sse(event: dict[str, Any]) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


async def _event_stream(daemon: Daemon, request: Request) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)

    def deliver(event: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(event)

    def from_any_thread(event: dict[str, Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed
            loop.call_soon_threadsafe(deliver, event)

    unsubscribe = daemon.subscribe(from_any_thread)
    try:
        yield _sse({"type": "status", **daemon.status()})
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), timeout=_KEEPALIVE_S)
            except TimeoutError:
                if await request.is_disconnected():
                    return
                yield b": keep-alive\n\n"
                continue
            yield _sse(event)
            if event["type"] == "shutdown":
                return
    finally:
        unsubscribe()
