"""``/docs``: Swagger UI from the ``swagger-ui-bundle`` package's files, served here (no CDN; the
page keeps the same Content-Security-Policy as the rest: no inline script)."""

from __future__ import annotations

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
    try:
        import swagger_ui_bundle
    except ImportError:
        return None
    return Path(swagger_ui_bundle.swagger_ui_path)


def mount(app) -> None:
    from fastapi.responses import HTMLResponse, Response

    from facerec.server.limits import HTTPError

    @app.get("/docs", include_in_schema=False)
    def docs_page():
        if swagger_dir() is None:
            raise HTTPError(
                404,
                "API docs need the swagger-ui-bundle package (pip install 'facerec[serve]'); "
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
