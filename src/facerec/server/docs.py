"""``/docs``: Swagger UI from the ``swagger-ui-py`` package's files (Swagger UI 5, which reads the
OpenAPI 3.1 document FastAPI emits), served here (no CDN; the page keeps the same
Content-Security-Policy as the rest: no inline script)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "init.js": "text/javascript",
}
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>facerec API</title>
<link rel="icon" href="data:,"><link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script></body></html>
"""
INIT = 'window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true});\n'


def swagger_dir() -> Path | None:
    """The folder of Swagger UI's files inside the swagger-ui-py package (found, not imported: the
    package's own code, for other frameworks, is not needed), or None when it is not installed."""
    try:
        spec = importlib.util.find_spec("swagger_ui")
    except ImportError:
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def mount(app) -> None:
    from fastapi.responses import HTMLResponse, Response

    from facerec.server.limits import HTTPError

    @app.get("/docs", include_in_schema=False)
    def docs_page():
        if swagger_dir() is None:
            raise HTTPError(
                404,
                "API docs need the swagger-ui-py package (pip install 'facerec[serve]'); "
                "the schema is at /openapi.json",
            )
        return HTMLResponse(PAGE)

    @app.get("/docs/{asset}", include_in_schema=False)
    def docs_asset(asset: str):
        folder = swagger_dir()
        if asset not in ASSETS or folder is None:
            raise HTTPError(404, f"no asset {asset!r}")
        body = INIT.encode() if asset == "init.js" else (folder / asset).read_bytes()
        return Response(body, media_type=ASSETS[asset], headers={"cache-control": "max-age=86400"})
