"""The console: a page served by the daemon at ``/console``, and what it needs
besides the REST API of ``_api``: the pipeline files it may load, a run's
files to download and inspect, and the live preview over a WebSocket.

The page (``rigd/service/console/``, installed with rigd; no CDN) does
everything through these documented endpoints, with the token the user
typed once (kept in the tab's ``sessionStorage``).

The preview, ``WS /v1/preview``: the browser sends JSON messages, the first
with the token::

    {"token": "...", "stream": "camera.frames", "fps": 10, "max_size": 512,
     "format": "jpeg", "contrast": "auto" | [min, max], "cursor": [x, y]}

(any later message changes any of these but the token). A wrong token is
closed with code 4401. The daemon answers each frame with a JSON text
message (``type: frame``: frame id, timestamp, shape, contrast, histogram,
the pixel under the cursor) followed by the encoded image as a binary
message, at most ``fps`` times a second and never the same frame twice.
The browser sends ``{"ack": SEQ}`` once it has drawn a frame: at most two
frames are ever unacknowledged, so a slow or frozen page gets fresh frames
rather than a queue of old ones, and one silent for 10 s loses its tap (the
ring's reader slot) until it acknowledges again;
``type: idle`` once a second while no run is on (with the streams there
are), ``type: error`` for a setting it refused (the others stay).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.params import Depends
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response

from rigd.config import BUNDLED_PIPELINES
from rigd.service._daemon import NotFoundError, TransitionError
from rigd.service._summary import format_summary
from rigd.service._token import token_matches

if TYPE_CHECKING:
    from rigd.service._daemon import Daemon
    from rigd.service._preview import PreviewTap

__all__ = ["ASSETS", "console_router", "errors"]

log = logging.getLogger(__name__)

ASSETS = Path(__file__).with_name("console")
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
_MAX_FPS = 60.0
_MEANING = {
    401: "Missing or wrong bearer token.",
    404: "No such run, or no such file of it.",
    409: "Not in this state: the run has not stopped yet, or a start raced this one.",
    422: "An invalid path or query parameter (the message names it).",
    507: "The test run would not fit the data directory's free space.",
}
_ERROR_SCHEMA = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "errors": {"type": "array"}},
    "required": ["detail"],
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these error statuses: ``{"detail": "..."}``."""
    return {
        code: {
            "description": _MEANING[code],
            "content": {"application/json": {"schema": _ERROR_SCHEMA}},
        }
        for code in codes
    }


_IDLE_S = 1.0
_IN_FLIGHT = 2  # frames sent and not yet acknowledged, at most
_SILENT_S = 10.0  # a browser that acknowledges nothing this long loses its tap


@dataclasses.dataclass
class _Settings:
    stream: str | None = None
    fps: float = 10.0
    max_size: int = 512
    format: str = "jpeg"
    contrast: tuple[float, float] | None = None
    cursor: tuple[int, int] | None = None
    #: Frames the browser has acknowledged so far.
    acks: int = 0

    def update(self, message: Any) -> None:
        """Apply a message's settings; a wrong one raises ValueError naming it."""
        from rigd.service._preview import FORMATS

        if not isinstance(message, dict):
            raise ValueError("send a JSON object of settings")
        unknown = set(message) - {
            "token",
            "ack",
            *(f.name for f in dataclasses.fields(self) if f.name != "acks"),
        }
        if unknown:
            raise ValueError(f"unknown setting(s) {sorted(unknown)}; see README 'Console'")
        new = dataclasses.replace(self)
        if "stream" in message:
            if not isinstance(message["stream"], str | None):
                raise ValueError("stream: a link's name, e.g. 'camera.frames'")
            new.stream = message["stream"]
        if "fps" in message:
            fps = message["fps"]
            if not _number(fps) or not fps > 0:
                raise ValueError(f"fps: a number above 0, at most {_MAX_FPS:g}; got {fps!r}")
            new.fps = min(float(fps), _MAX_FPS)
        if "max_size" in message:
            size = message["max_size"]
            if not isinstance(size, int) or isinstance(size, bool) or not 16 <= size <= 4096:
                raise ValueError(f"max_size: whole pixels, 16 to 4096; got {size!r}")
            new.max_size = size
        if "format" in message:
            if message["format"] not in FORMATS:
                raise ValueError(f"format: one of {sorted(FORMATS)}; got {message['format']!r}")
            new.format = message["format"]
        if "contrast" in message:
            new.contrast = _contrast(message["contrast"])
        if "cursor" in message:
            cursor = message["cursor"]
            if cursor is None:
                new.cursor = None
            elif (
                isinstance(cursor, list)
                and len(cursor) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in cursor)
            ):
                new.cursor = (cursor[0], cursor[1])
            else:
                raise ValueError("cursor: [x, y] in the full frame's pixels, or null")
        if "ack" in message:
            if not isinstance(message["ack"], int) or isinstance(message["ack"], bool):
                raise ValueError("ack: the seq of the frame drawn (an integer)")
            new.acks += 1
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(new, field.name))


def _number(value: Any) -> bool:
    """A finite JSON number (not a bool, which Python counts as an int)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _contrast(value: Any) -> tuple[float, float] | None:
    if value in ("auto", None):
        return None
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(_number(v) for v in value)
        and value[0] < value[1]
    ):
        return (float(value[0]), float(value[1]))
    raise ValueError(f"contrast: 'auto' or [min, max] with min < max; got {value!r}")


def _pipeline_names(daemon: Daemon) -> list[dict[str, str]]:
    directories = list(daemon.config.pipeline_dirs)
    if daemon.config.bundled_pipelines:
        directories.append(BUNDLED_PIPELINES)
    found: dict[str, dict[str, str]] = {}
    for directory in directories:
        with contextlib.suppress(OSError):
            for path in sorted(directory.glob("*.y*ml")):
                if path.is_file() and not path.name.startswith("."):
                    found.setdefault(path.stem, {"name": path.stem, "path": str(path)})
    return list(found.values())


def console_router(daemon: Daemon, token: str, guarded: list[Depends]) -> APIRouter:
    """The console's page, assets, preview and helper endpoints."""
    router = APIRouter()

    @router.get("/console", include_in_schema=False)
    async def console() -> Response:
        return FileResponse(ASSETS / "index.html", media_type="text/html")

    @router.get("/", include_in_schema=False)
    async def root() -> Response:
        return RedirectResponse("/console")

    @router.get("/console/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> Response:
        path = ASSETS / name
        if "/" in name or name.startswith(".") or not path.is_file() or path.suffix not in _TYPES:
            return JSONResponse({"detail": f"no console asset {name!r}"}, status_code=404)
        return FileResponse(path, media_type=_TYPES[path.suffix])

    @router.get("/v1/pipelines", tags=["pipeline"], dependencies=guarded, responses=errors(401))
    async def pipelines() -> list[dict[str, str]]:
        """The pipeline files ``PUT /v1/pipeline`` loads by name: name and path."""
        return _pipeline_names(daemon)

    def finished_file(run_id: str, index: int) -> Path:
        record = daemon.run(run_id)
        if record.state in ("starting", "running", "stopping"):
            raise TransitionError(
                f"run {record.run_id!r} is {record.state}; its files are ready once it has stopped"
            )
        if not 0 <= index < len(record.files):
            raise NotFoundError(
                f"run {record.run_id!r} has {len(record.files)} file(s); index {index} is none "
                "of them (0 is the first)"
            )
        path = Path(record.files[index])
        if not path.is_file():
            raise NotFoundError(f"run {record.run_id!r}'s file {path} is no longer on disk")
        return path

    @router.get(
        "/v1/runs/{run_id}/files/{index}",
        tags=["runs"],
        dependencies=guarded,
        response_class=FileResponse,
        responses={200: {"content": {"application/x-hdf5": {}}}, **errors(401, 404, 409, 422)},
    )
    async def run_file(run_id: str, index: int) -> Response:
        """Download a finished run's file (``index`` 0 is the first of ``files``)."""
        path = finished_file(run_id, index)
        return FileResponse(path, media_type="application/x-hdf5", filename=path.name)

    @router.get(
        "/v1/runs/{run_id}/files/{index}/summary",
        tags=["runs"],
        dependencies=guarded,
        responses=errors(401, 404, 409, 422),
    )
    async def run_file_summary(run_id: str, index: int) -> dict[str, Any]:
        """What ``rigd inspect`` says of a finished run's file: as JSON, and its text."""
        from rigd.storage import inspect_run

        path = finished_file(run_id, index)
        summary = await asyncio.to_thread(inspect_run, path)
        data = json.loads(json.dumps(dataclasses.asdict(summary), default=str))
        return {"summary": data, "text": format_summary(summary)}

    @router.websocket("/v1/preview")
    async def preview(websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            first = json.loads(await asyncio.wait_for(websocket.receive_text(), 30))
        except (TimeoutError, ValueError, WebSocketDisconnect, KeyError):
            with contextlib.suppress(Exception):
                await websocket.close(4400, "send the settings, with the token, as JSON first")
            return
        given = first.get("token") if isinstance(first, dict) else None
        if not isinstance(given, str) or not token_matches(given, token):
            await websocket.close(4401, "wrong token: use the one in the daemon's token file")
            return
        settings = _Settings()
        try:
            settings.update(first)
        except ValueError as exc:
            await websocket.send_json({"type": "error", "detail": str(exc)})
        changed = asyncio.Event()
        listener = asyncio.create_task(_listen(websocket, settings, changed))
        try:
            await _stream(websocket, daemon, settings, changed, listener)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the browser left (or the daemon is stopping)
        finally:
            listener.cancel()
            with contextlib.suppress(BaseException):
                await listener

    return router


async def _listen(websocket: WebSocket, settings: _Settings, changed: asyncio.Event) -> None:
    while True:
        try:
            text = await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return
        try:
            settings.update(json.loads(text))
        except ValueError as exc:
            await websocket.send_json({"type": "error", "detail": str(exc)})
        changed.set()


async def _stream(
    websocket: WebSocket,
    daemon: Daemon,
    settings: _Settings,
    changed: asyncio.Event,
    listener: asyncio.Task[None],
) -> None:
    from rigd.service._preview import PreviewTap, render

    tap: PreviewTap | None = None
    last_seq = -1
    sent = 0
    last_sent = 0.0
    try:
        while not listener.done():
            segments = _image_segments(daemon)
            stream = settings.stream if settings.stream in segments else None
            if stream is None and settings.stream is None and segments:
                stream = next(iter(segments))
            if tap is not None and (stream is None or tap.segment != segments[stream]):
                tap.close()
                tap, last_seq = None, -1
            if stream is None:
                await websocket.send_json(
                    {
                        "type": "idle",
                        "streams": list(segments),
                        "detail": "no run is on"
                        if not segments
                        else f"no stream {settings.stream!r}",
                    }
                )
                await _pause(changed, _IDLE_S)
                continue
            due = last_sent + 1.0 / settings.fps
            if time.monotonic() < due:
                # Paced at the page's rate; a message (an ack, a setting) wakes this
                # early, and the wait goes on for what is left of the period.
                await _pause(changed, due - time.monotonic())
                continue
            if sent - settings.acks >= _IN_FLIGHT:
                # The page has not drawn what it has: send nothing until it has.
                if tap is not None and time.monotonic() - last_sent > _SILENT_S:
                    tap.close()
                    tap, last_seq = None, -1
                await _pause(changed, _IDLE_S if tap is None else 1.0 / settings.fps)
                continue
            if tap is None:
                try:
                    tap = PreviewTap(segments[stream])
                except (FileNotFoundError, OSError) as exc:
                    log.debug("preview: %s", exc)
                    await _pause(changed, _IDLE_S)
                    continue
                except RuntimeError as exc:
                    await websocket.send_json({"type": "error", "detail": str(exc)})
                    await _pause(changed, _IDLE_S)
                    continue
            if tap.committed - 1 == last_seq:
                # No newer frame (the camera is slower than the view): look again soon.
                await _pause(changed, 0.25 / settings.fps)
                continue
            taken = await asyncio.to_thread(tap.take, settings.max_size, settings.cursor)
            if taken is not None:
                last_seq = taken.seq
                meta, image = await asyncio.to_thread(
                    render, taken, settings.contrast, settings.format
                )
                meta["stream"] = stream
                meta["streams"] = list(segments)
                await websocket.send_text(json.dumps(meta))
                await websocket.send_bytes(image)
                sent += 1
                last_sent = time.monotonic()
    finally:
        if tap is not None:
            tap.close()


def _image_segments(daemon: Daemon) -> dict[str, str]:
    """The running pipeline's links of images (2-D frames or more), by name."""
    segments = daemon.ring_segments()
    if not segments:
        return {}
    images = {link["ring"] for link in daemon.pipeline_info()["links"] if len(link["shape"]) >= 2}
    return {name: segment for name, segment in segments.items() if name in images}


async def _pause(changed: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if the browser changes a setting."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(changed.wait(), seconds)
    changed.clear()
