"""``facerec serve``: identify, verify and enrol over HTTP, and the web page at ``/``.

:func:`create_app` puts the application together, one named step each: the served gallery (and
people folder), the :class:`~facerec.server.service.Service` whose models load in the background,
the gate every request passes, the routes, and errors answered as JSON ``{"error": message}``.
:func:`serving` runs an app in a background thread (tests, notebooks, load tests).
"""

from contextlib import contextmanager
from pathlib import Path


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
    from facerec._version import __version__
    from facerec.server.limits import Limits
    from facerec.server.service import Service

    limits = limits or Limits()
    served, gallery, spec = _open_gallery(model, token=store_token, fpir=fpir, sync_s=sync_s)
    try:
        folder = None if people is None else _open_people_folder(people, gallery, served.store.uri)
    except BaseException:
        served.close()
        raise
    app = _application(served)
    service = Service(store=served, limits=limits, spec=spec, version=__version__, workers=workers, people=folder)
    app.state.service = service
    _load_models_in_background(service, _pipeline_maker(gallery, pipeline_factory, device), workers)
    _guard(app, limits, api_key=api_key, allowed_hosts=allowed_hosts, allowed_origins=allowed_origins)
    _mount_routes(app)
    _answer_errors_in_json(app)
    return app


# -- the steps of create_app, in its order ---------------------------------------------------------
def _open_gallery(model, *, token, fpir, sync_s):
    """The served gallery, the gallery as loaded, and its embedder's spec. Opened first: a missing,
    locked or foreign model is the caller's error at once, not a service that starts and then fails
    every request. The store is closed again if the gallery cannot be served (its lock released)."""
    from facerec.embed import get_spec
    from facerec.errors import ModelFileError
    from facerec.store import ServedGallery, open_store
    from facerec.store.served import SYNC_S

    store = open_store(model, writer=True, token=token)
    try:
        gallery = store.load()
        if gallery.pipeline is None:
            raise ModelFileError(f"{store.uri}: the model records no pipeline; retrain it with this facerec")
        spec = get_spec(gallery.pipeline.embedder)
        served = ServedGallery(store, gallery=gallery, fpir=fpir, sync_s=SYNC_S if sync_s is None else sync_s)
    except BaseException:
        store.close()
        raise
    return served, gallery, spec


def _open_people_folder(people, gallery, uri: str):
    """The people folder ``/v1/clusters`` works on. The service embeds new photos with the gallery's
    pipeline, so the folder's faces must come from that pipeline too (refused otherwise)."""
    from facerec.people.served import ServedPeopleFolder

    return ServedPeopleFolder(people, gallery_pipeline=gallery.pipeline.to_dict(), gallery_uri=uri)


def _application(served):
    """The bare FastAPI app. Its lifespan closes the gallery on shutdown: the sync thread stops and
    the file lock or the database connection goes, so the next server can open it."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI

    from facerec._version import __version__

    @asynccontextmanager
    async def lifespan(app):
        yield
        served.close()

    return FastAPI(
        title="facerec",
        version=__version__,
        description='Identify, verify and enrol faces. Errors answer {"error": message}.',
        docs_url=None,  # served by docs.mount from packaged assets: no CDN
        redoc_url=None,
        lifespan=lifespan,
    )


def _pipeline_maker(gallery, pipeline_factory, device: str):
    """How one pipeline of the pool is built: the caller's factory, or the pipeline the model was
    trained with (a gallery only answers for embeddings from its own pipeline)."""
    from facerec.pipeline import Pipeline

    def make():
        pipe = pipeline_factory(gallery) if pipeline_factory else Pipeline.for_model(gallery, device=device)
        pipe.limit_caches(512)  # repeated uploads are free; memory bounded
        return pipe

    return make


def _load_models_in_background(service, make, workers: int) -> None:
    """Load the models in a thread: loading takes seconds to minutes, and meanwhile ``/healthz``
    answers (``"ready": false``) and requests wait for them instead of the port staying closed."""
    import threading

    from facerec.server.service import PipelinePool

    threading.Thread(
        target=service.load, args=(lambda: PipelinePool(make, workers),), name="facerec-load", daemon=True
    ).start()


def _guard(app, limits, *, api_key, allowed_hosts, allowed_origins) -> None:
    """Every request passes the gate (:mod:`.security`) before any route sees it: host names,
    cross-site writes, the API key and body sizes are checked before a body is parsed."""
    from facerec.server.security import LOOPBACK_HOSTS, Gate

    app.add_middleware(
        Gate,
        max_body=limits.max_upload_bytes,
        larger_bodies={"/v1/identify-video": limits.max_video_bytes},
        allowed_hosts=set(LOOPBACK_HOSTS) | set(allowed_hosts),
        allowed_origins=allowed_origins,
        api_key=api_key,
    )


def _mount_routes(app) -> None:
    """The API: ``/healthz`` and ``/v1`` (:mod:`.routes`), ``/v1/clusters`` (:mod:`.clusters`),
    its documentation at ``/docs`` (:mod:`.docs`), then the web page at ``/`` (:mod:`.page`)."""
    from facerec.server import docs, page, routes
    from facerec.server.clusters import clusters

    app.include_router(routes.router)
    app.include_router(clusters)
    docs.mount(app)
    page.mount(app)


def _answer_errors_in_json(app) -> None:
    """Every error, ours or FastAPI's (a bad parameter, an unknown path), is answered
    ``{"error": message}``: clients and the page read one shape."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from facerec.server.limits import HTTPError

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
