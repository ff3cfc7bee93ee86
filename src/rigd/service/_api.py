"""The REST API under ``/v1`` (FastAPI), with Prometheus metrics at ``/metrics``.

Every endpoint but ``/v1/health`` (and the docs) needs ``Authorization:
Bearer <token>``. Errors are JSON ``{"detail": "..."}`` whose message names
the fix (``_errors``). A run in progress is never disturbed by a request
that fails. The daemon's long operations (start, stop, load) run on worker
threads, so the event loop keeps serving status and events while a run
starts or stops.

The routes live in ``_routes``, one router per resource; adding a resource
is one ``include_router`` line below.
"""

from __future__ import annotations

from fastapi import FastAPI

from rigd._version import __version__
from rigd.service._asgi import BodyLimit
from rigd.service._console import console_router
from rigd.service._daemon import Daemon
from rigd.service._deps import GUARDED
from rigd.service._errors import install_error_handlers
from rigd.service._routes import actors, docs, events, pipeline, run_control, runs, status
from rigd.service._selftest_run import selftest_router

__all__ = ["create_app"]


def create_app(daemon: Daemon, token: str) -> FastAPI:
    """The ASGI app serving ``daemon``, guarded by ``token``."""
    app = FastAPI(
        title="rigd",
        version=__version__,
        description="Start and stop acquisition runs on a lab rig, and watch them.",
        # /docs is served from files installed with rigd (a rig PC may be offline).
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.daemon = daemon
    app.state.token = token
    app.add_middleware(BodyLimit, limit=daemon.config.max_body_bytes)
    install_error_handlers(app)
    app.include_router(docs.router)
    app.include_router(status.router)
    app.include_router(pipeline.router)
    app.include_router(runs.router)
    app.include_router(run_control.router)
    app.include_router(actors.router)
    app.include_router(events.router)
    app.include_router(console_router(daemon, token, GUARDED))
    app.include_router(selftest_router(daemon, GUARDED))
    return app
