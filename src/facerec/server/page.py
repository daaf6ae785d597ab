"""``/``: the web page (``facerec/web``), and its script and style sheet at ``/web/…``. Only the
files named here are served, never a path taken from the URL."""

from __future__ import annotations

from pathlib import Path

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}


def mount(app) -> None:
    from fastapi.responses import FileResponse, HTMLResponse

    from facerec.server.limits import HTTPError

    @app.get("/", include_in_schema=False)
    def page():
        return HTMLResponse((WEB_DIR / "index.html").read_text())

    @app.get("/web/{asset}", include_in_schema=False)
    def asset(asset: str):
        if asset not in ASSETS:
            raise HTTPError(404, f"no asset {asset!r}")
        return FileResponse(WEB_DIR / asset, media_type=ASSETS[asset])
