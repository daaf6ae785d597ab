"""``facerec serve``: identify, verify and enrol over HTTP, and the web page at ``/``.

A thin edge over the library: the app holds a :class:`~facerec.store.ServedGallery` and a few
:class:`~facerec.pipeline.Pipeline` objects; the routes (:mod:`.routes`) get them injected, parse
and limit requests, and map library errors to JSON ``{"error": message}`` with a 4xx status.
"""

from contextlib import contextmanager
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parents[1] / "web"


def create_app(
    model: str | Path,
    *,
    api_key: str | None = None,
    limits=None,
    workers: int = 2,
    device: str = "auto",
    pipeline_factory=None,
    allowed_hosts=(),
    allowed_origins=(),
    store_token: str | None = None,
    sync_s: float | None = None,
    people: str | Path | None = None,
    fpir: float | None = None,
):
    """The FastAPI application serving ``model``: a model file (changes are saved back to it
    atomically, and the file is locked against a second writer) or a store URI (``milvus:….db``,
    ``http://host:19530``: changes are written to the database; replicas on one server see each
    other's changes within ``sync_s`` seconds).

    The gallery loads now; the models load in a background thread, so ``/healthz`` answers at once
    (``"ready": false`` until they are loaded) and requests that need them wait. ``pipeline_factory
    (gallery)`` builds a pipeline (default: the one the model was trained with). The server answers
    to loopback host names and ``allowed_hosts``; browsers may write from its own page and
    ``allowed_origins`` only (see :mod:`.security`). ``people``: a people folder (``facerec cluster
    --out``) whose clusters ``/v1/clusters`` lists and names (its faces must come from the
    gallery's pipeline). ``fpir``: the share of strangers the open-set threshold may name someone
    (default: the model's own target).
    """
    import threading

    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from facerec._version import __version__
    from facerec.embed import get_spec
    from facerec.pipeline import Pipeline
    from facerec.server import docs, routes
    from facerec.server.limits import HTTPError, Limits
    from facerec.server.security import LOOPBACK_HOSTS, Gate
    from facerec.server.service import PipelinePool, Service
    from facerec.store import ServedGallery, open_store
    from facerec.store.served import SYNC_S

    limits = limits or Limits()
    store = open_store(model, writer=True, token=store_token)
    try:
        gallery = store.load()
        if gallery.pipeline is None:
            from facerec.errors import ModelFileError

            raise ModelFileError(f"{store.uri}: the model records no pipeline; retrain it with this facerec")
        spec = get_spec(gallery.pipeline.embedder)
        served = ServedGallery(
            store,
            gallery=gallery,
            fpir=fpir,
            sync_s=SYNC_S if sync_s is None else sync_s,
        )
    except BaseException:
        store.close()
        raise

    folder = None
    if people is not None:
        from facerec.people.served import ServedPeopleFolder

        try:
            # the service embeds new photos with the gallery's pipeline: the folder's faces must match it
            folder = ServedPeopleFolder(people, gallery_pipeline=gallery.pipeline.to_dict(), gallery_uri=store.uri)
        except BaseException:
            served.close()
            raise

    def make():
        pipe = pipeline_factory(gallery) if pipeline_factory else Pipeline.for_model(gallery, device=device)
        pipe.limit_caches(512)  # repeated uploads are free; memory bounded
        return pipe

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app):
        yield
        served.close()  # the sync thread stops; the file lock or the database connection goes

    app = FastAPI(
        title="facerec",
        version=__version__,
        description='Identify, verify and enrol faces. Errors answer {"error": message}.',
        docs_url=None,  # served below from packaged assets: no CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    service = Service(
        store=served,
        limits=limits,
        spec=spec,
        version=__version__,
        workers=workers,
        people=folder,
    )
    app.state.service = service
    threading.Thread(
        target=service.load, args=(lambda: PipelinePool(make, workers),), name="facerec-load", daemon=True
    ).start()
    app.add_middleware(
        Gate,
        max_body=limits.max_upload_bytes,
        larger_bodies={"/v1/identify-video": limits.max_video_bytes},
        allowed_hosts=set(LOOPBACK_HOSTS) | set(allowed_hosts),
        allowed_origins=allowed_origins,
        api_key=api_key,
    )
    app.include_router(routes.router)
    from facerec.server.clusters import clusters

    app.include_router(clusters)
    docs.mount(app)

    @app.exception_handler(HTTPError)
    async def _http_error(request, exc: HTTPError):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request, exc: RequestValidationError):
        parts = [
            "{}: {}".format(".".join(str(p) for p in e.get("loc", ())[1:]) or "request", e.get("msg"))
            for e in exc.errors()
        ]
        return JSONResponse({"error": "; ".join(parts) or "invalid request"}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _starlette(request, exc: StarletteHTTPException):
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code)

    @app.get("/", include_in_schema=False)
    def page():
        return HTMLResponse((WEB_DIR / "index.html").read_text())

    @app.get("/web/{asset}", include_in_schema=False)
    def asset(asset: str):
        files = {"app.js": "text/javascript", "style.css": "text/css"}
        if asset not in files:
            raise HTTPError(404, f"no asset {asset!r}")
        return FileResponse(WEB_DIR / asset, media_type=files[asset])

    return app


@contextmanager
def serving(app, host: str = "127.0.0.1"):
    """Run ``app`` with uvicorn on a free port of ``host`` in a background thread (tests, notebooks,
    load tests); yields the base URL and stops the server on exit."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    from facerec.server.protocol import uvicorn_config

    server = uvicorn.Server(uvicorn_config(app, host=host, port=port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
