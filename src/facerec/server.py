"""``facerec serve``: identify, verify and enrol over HTTP, and the web page at ``/``.

A thin edge over the library: requests are parsed and limited here, the work is done by
:class:`~facerec.pipeline.FacePipeline` and :class:`~facerec.store.GalleryStore`, and library
errors become JSON ``{"error": message}`` with a 4xx status.
"""

import hmac
import ipaddress
import queue
import re
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import FacerecError, ImageError, InputError, NoFaceError
from .images import DEFAULT_MAX_PIXELS, decode_image

WEB_DIR = Path(__file__).parent / "web"
CONTENT_TYPES = {"image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif", "image/tiff"}
NAME_RE = re.compile(r"^[^\W_](?:[\w .'-]{0,62}[^\W_.])?$")  # letters/digits at both ends; no / \ or ..


@dataclass
class Limits:
    """What one request may carry. ``max_upload_bytes`` bounds the whole request body."""

    max_upload_bytes: int = 10 * 2**20
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_faces: int = 20
    max_files: int = 20


class HTTPError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def check_name(name: str) -> str:
    """A person's name as the URL gave it; refuses anything that could act as a path or markup."""
    name = unicodedata.normalize("NFC", name).strip()
    if not NAME_RE.match(name) or ".." in name:
        raise HTTPError(
            400,
            f"invalid person name {name[:80]!r}: use 1-64 letters, digits, spaces and . ' - _ "
            "(starting and ending with a letter or digit)",
        )
    return name


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class PipelinePool:
    """A few independent pipelines (models are not all safe to call from two threads at once),
    checked out one request at a time: ``size`` requests embed in parallel."""

    def __init__(self, make, size: int):
        self._free: queue.Queue = queue.Queue()
        for _ in range(max(1, size)):
            self._free.put(make())

    @contextmanager
    def get(self):
        pipe = self._free.get()
        try:
            yield pipe
        finally:
            self._free.put(pipe)


def create_app(
    model: str | Path,
    *,
    api_key: str | None = None,
    limits: Limits | None = None,
    workers: int = 2,
    device: str = "auto",
    pipeline_factory=None,
):
    """The FastAPI application serving ``model`` (changes are saved back to it atomically).

    ``pipeline_factory(gallery)`` builds a pipeline (default: the one the model was trained with).
    """
    from fastapi import Depends, FastAPI, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from . import __version__
    from .api import load_model, pipeline_for_model
    from .datasets import Sample
    from .embed import get_spec
    from .identify import identify
    from .store import GalleryStore

    limits = limits or Limits()
    gallery = load_model(model)
    spec = get_spec(gallery.pipeline["embedder"])
    store = GalleryStore(gallery, model, default_threshold=spec.default_threshold)
    align = gallery.pipeline.get("aligner", "mtcnn")

    def make():
        pipe = (
            pipeline_factory(gallery) if pipeline_factory else pipeline_for_model(gallery, align=align, device=device)
        )
        pipe.limit_caches(512)  # repeated uploads are free; memory bounded
        return pipe

    pool = PipelinePool(make, workers)

    app = FastAPI(
        title="facerec",
        version=__version__,
        description='Identify, verify and enrol faces. Errors answer {"error": message}.',
    )
    app.state.store = store
    app.add_middleware(BodyLimit, max_bytes=limits.max_upload_bytes)

    @app.exception_handler(HTTPError)
    async def _http_error(request, exc: HTTPError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

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

    def require_key(request: Request) -> None:
        if api_key is None:
            return
        given = request.headers.get("x-api-key", "")
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            raise HTTPError(401, "missing or wrong API key (send it in the X-API-Key header)")

    async def read_image(upload: UploadFile, field: str) -> tuple[str, np.ndarray]:
        label = f"{field} ({upload.filename or 'upload'})"
        ctype = (upload.content_type or "").split(";")[0].strip().lower()
        if ctype not in CONTENT_TYPES:
            raise HTTPError(
                415,
                f"{label}: content type {ctype or 'none'!r} is not an image type we read "
                f"({', '.join(sorted(CONTENT_TYPES))})",
            )
        data = await upload.read(limits.max_upload_bytes + 1)
        if len(data) > limits.max_upload_bytes:
            raise HTTPError(413, f"{label}: over the upload limit of {limits.max_upload_bytes:,} bytes")
        if not data:
            raise HTTPError(400, f"{label}: empty file")
        try:
            return label, decode_image(data, label=label, max_pixels=limits.max_pixels)
        except ImageError as exc:
            status = 413 if "pixels" in str(exc) or "bomb" in str(exc) else 400
            raise HTTPError(status, str(exc)) from None

    def faces_of(pipe, label: str, image: np.ndarray):
        result = pipe.run([Sample(label, image)], quiet=True)[0]
        if result.error:
            raise HTTPError(400, result.error)
        if len(result.faces) > limits.max_faces:
            raise HTTPError(422, f"{label}: {len(result.faces)} faces, over the limit of {limits.max_faces} per image")
        return result.faces

    v1 = [Depends(require_key)]

    @app.get("/healthz")
    def healthz():
        people = store.people()
        return {
            "status": "ok",
            "people": len(people),
            "faces": sum(n for _, n in people),
            "embedder": gallery.pipeline.get("embedder"),
            "version": __version__,
        }

    @app.get("/v1/people", dependencies=v1)
    def people():
        return {"people": [{"name": n, "images": c} for n, c in store.people()]}

    @app.delete("/v1/people/{name}", dependencies=v1)
    def remove(name: str):
        name = check_name(name)
        try:
            removed = store.remove(name)
        except KeyError:
            raise HTTPError(404, f"no person named {name!r} is enrolled") from None
        except InputError as exc:
            raise HTTPError(409, str(exc)) from None
        return {"removed": name, "images": removed}

    @app.post("/v1/identify", dependencies=v1)
    async def identify_endpoint(image: UploadFile, topk: int = 5):
        if not 1 <= topk <= 50:
            raise HTTPError(422, f"topk must be between 1 and 50, got {topk}")
        label, img = await read_image(image, "image")
        return await _run(lambda: _identify(label, img, topk))

    def _identify(label, img, topk):
        with pool.get() as pipe:
            faces = faces_of(pipe, label, img)
        if not faces:
            return {"faces": [], "width": int(img.shape[1]), "height": int(img.shape[0])}
        with store.reading() as (g, cal):
            preds = identify(g, np.stack([f.embedding for f in faces]), topk=topk, calibration=cal)
            threshold, source = (cal.threshold, cal.source) if cal else (None, "closed-set")
        return {
            "faces": [
                {
                    "box": [round(float(v), 1) for v in f.box],
                    "score": round(float(f.score), 4),
                    "pred": p.name,
                    "candidate": p.candidate,
                    "distance": round(p.distance, 4),
                    "votes": p.votes,
                    "topk": [{"name": n.name, "distance": round(n.distance, 4)} for n in p.neighbors],
                }
                for f, p in zip(faces, preds)
            ],
            "threshold": threshold,
            "threshold_source": source,
            "width": int(img.shape[1]),
            "height": int(img.shape[0]),
        }

    @app.post("/v1/verify", dependencies=v1)
    async def verify_endpoint(image_a: UploadFile, image_b: UploadFile):
        a = await read_image(image_a, "image_a")
        b = await read_image(image_b, "image_b")
        return await _run(lambda: _verify(a, b))

    def _verify(a, b):
        from .calibrate import pairwise_distances

        with pool.get() as pipe:
            fa, fb = faces_of(pipe, *a), faces_of(pipe, *b)
        templates = []
        for (label, _), faces in ((a, fa), (b, fb)):
            if not faces:
                raise HTTPError(422, f"{label}: no face found")
            templates.append(faces[0].embedding[None])
        with store.reading() as (g, cal):
            threshold = cal.threshold if cal else spec.default_threshold
            source = cal.source if cal else "default"
        d = float(pairwise_distances(templates[0], templates[1], g.metric)[0, 0])
        return {"same": d <= threshold, "distance": round(d, 4), "threshold": threshold, "threshold_source": source}

    @app.post("/v1/people/{name}/faces", dependencies=v1, status_code=201)
    async def enrol(name: str, images: list[UploadFile]):
        name = check_name(name)
        if len(images) > limits.max_files:
            raise HTTPError(413, f"{len(images)} images in one request, over the limit of {limits.max_files}")
        decoded = [await read_image(up, f"images[{i}]") for i, up in enumerate(images)]
        return await _run(lambda: _enrol(name, decoded))

    def _enrol(name, decoded):
        vectors, ids, skipped = [], [], []
        with pool.get() as pipe:
            for label, img in decoded:
                faces = faces_of(pipe, label, img)
                if not faces:
                    skipped.append({"file": label, "error": "no face found"})
                    continue
                vectors.append(faces[0].embedding)  # the most prominent face (large and central)
                ids.append(f"api:{name}:{label}")
        if not vectors:
            raise HTTPError(422, f"no face found in any of the {len(decoded)} images; nothing was enrolled")
        total = store.enrol(name, np.stack(vectors), ids)
        return {"name": name, "added": len(vectors), "images": total, "skipped": skipped}

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    @app.get("/web/{asset}", include_in_schema=False)
    def asset(asset: str):
        files = {"app.js": "text/javascript", "style.css": "text/css"}
        if asset not in files:
            raise HTTPError(404, f"no asset {asset!r}")
        return FileResponse(WEB_DIR / asset, media_type=files[asset])

    @app.get("/v1/config", dependencies=v1)
    def config():
        return {
            "max_upload_bytes": limits.max_upload_bytes,
            "max_pixels": limits.max_pixels,
            "max_faces": limits.max_faces,
            "max_files": limits.max_files,
            "embedder": spec.name,
        }

    return app


async def _run(fn):
    """Run blocking model work in the thread pool, translating library errors to 4xx."""
    from starlette.concurrency import run_in_threadpool

    try:
        return await run_in_threadpool(fn)
    except NoFaceError as exc:
        raise HTTPError(422, str(exc)) from None
    except FacerecError as exc:
        raise HTTPError(400, str(exc)) from None


class BodyLimit:
    """ASGI middleware: refuse a request body over ``max_bytes`` with 413 (declared or streamed)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        # multipart framing adds a little around the file itself
        allowed = self.max_bytes + 64 * 1024
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > allowed:
            return await _too_large(send, self.max_bytes)
        seen = 0
        started = False

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > allowed:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


class _BodyTooLarge(Exception):
    pass


async def _too_large(send, limit: int) -> None:
    import json

    body = json.dumps({"error": f"request body over the upload limit of {limit:,} bytes"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


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
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", limit_concurrency=256))
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
