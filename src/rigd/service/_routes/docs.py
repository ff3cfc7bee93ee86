"""``/docs``: Swagger UI from files installed with rigd (a rig PC may be offline).

It and ``/openapi.json`` describe the API only, so they need no token.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import APIRouter, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse

__all__ = ["router"]

_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}

router = APIRouter(include_in_schema=False)


@router.get("/docs")
async def docs() -> Response:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="rigd API",
        swagger_js_url="/docs/assets/swagger-ui-bundle.js",
        swagger_css_url="/docs/assets/swagger-ui.css",
        swagger_favicon_url="/docs/assets/favicon-32x32.png",
    )


@router.get("/docs/assets/{name}")
async def docs_asset(name: str) -> Response:
    if name not in _DOCS_ASSETS:
        return JSONResponse({"detail": f"no docs asset {name!r}"}, status_code=404)
    return FileResponse(
        Path(swagger_ui_bundle.swagger_ui_path) / name,
        media_type=_DOCS_ASSETS[name],
        headers={"Cache-Control": "max-age=86400"},
    )
