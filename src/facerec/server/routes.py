"""The ``/v1`` routes and ``/healthz``. Each gets the :class:`Service` injected (``Depends``), never
a closed-over global, so a test or another app can serve another store."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import numpy as np
from fastapi import APIRouter, Depends, Request, UploadFile

from ..embed import EmbedderSpec
from ..errors import FacerecError, ImageError, InputError, NoFaceError, NotEnrolledError
from ..images import decode_image
from ..store import GalleryStore
from . import models
from .limits import CONTENT_TYPES, HTTPError, Limits, check_name

ERRORS = {code: {"model": models.ErrorBody} for code in (400, 401, 404, 409, 413, 415, 422)}


@dataclass
class Service:
    """What the routes work with: the gallery store, a pool of pipelines, the request limits."""

    store: GalleryStore
    pipelines: object  # app.PipelinePool
    limits: Limits
    spec: EmbedderSpec
    api_key: str | None
    version: str


def service(request: Request) -> Service:
    return request.app.state.service


def require_key(request: Request, svc: Service = Depends(service)) -> None:
    if svc.api_key is None:
        return
    given = request.headers.get("x-api-key", "")
    if not hmac.compare_digest(given.encode(), svc.api_key.encode()):
        raise HTTPError(401, "missing or wrong API key (send it in the X-API-Key header)")


router = APIRouter()
v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_key)], responses=ERRORS)


@router.get("/healthz", response_model=models.Health)
def healthz(svc: Service = Depends(service)):
    people = svc.store.people()
    return models.Health(
        status="ok",
        people=len(people),
        faces=sum(n for _, n in people),
        embedder=svc.spec.name,
        version=svc.version,
    )


@v1.get("/people", response_model=models.People)
def people(svc: Service = Depends(service)):
    return models.People(people=[models.Person(name=n, images=c) for n, c in svc.store.people()])


@v1.delete("/people/{name}", response_model=models.Removed)
def remove(name: str, svc: Service = Depends(service)):
    name = check_name(name)
    try:
        removed = svc.store.remove(name)
    except NotEnrolledError as exc:
        raise HTTPError(404, str(exc)) from None
    except InputError as exc:
        raise HTTPError(409, str(exc)) from None
    return models.Removed(removed=name, images=removed)


@v1.post("/identify", response_model=models.Identified)
async def identify_faces(image: UploadFile, topk: int = 5, svc: Service = Depends(service)):
    if not 1 <= topk <= 50:
        raise HTTPError(422, f"topk must be between 1 and 50, got {topk}")
    label, img = await read_image(svc, image, "image")
    return await _run(lambda: _identify(svc, label, img, topk))


@v1.post("/verify", response_model=models.Verified)
async def verify_faces(image_a: UploadFile, image_b: UploadFile, svc: Service = Depends(service)):
    a = await read_image(svc, image_a, "image_a")
    b = await read_image(svc, image_b, "image_b")
    return await _run(lambda: _verify(svc, a, b))


@v1.post("/people/{name}/faces", response_model=models.Enrolled, status_code=201)
async def enrol(name: str, images: list[UploadFile], svc: Service = Depends(service)):
    name = check_name(name)
    if len(images) > svc.limits.max_files:
        raise HTTPError(413, f"{len(images)} images in one request, over the limit of {svc.limits.max_files}")
    decoded = [await read_image(svc, up, f"images[{i}]") for i, up in enumerate(images)]
    return await _run(lambda: _enrol(svc, name, decoded))


@v1.get("/config", response_model=models.ServiceConfig)
def config(svc: Service = Depends(service)):
    lim = svc.limits
    return models.ServiceConfig(
        max_upload_bytes=lim.max_upload_bytes,
        max_pixels=lim.max_pixels,
        max_faces=lim.max_faces,
        max_files=lim.max_files,
        embedder=svc.spec.name,
    )


router.include_router(v1)


# -- the work, run in the thread pool --------------------------------------------------------------
async def read_image(svc: Service, upload: UploadFile, field: str) -> tuple[str, np.ndarray]:
    limit = svc.limits.max_upload_bytes
    label = f"{field} ({upload.filename or 'upload'})"
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    if ctype not in CONTENT_TYPES:
        raise HTTPError(
            415,
            f"{label}: content type {ctype or 'none'!r} is not an image type we read ({', '.join(sorted(CONTENT_TYPES))})",
        )
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPError(413, f"{label}: over the upload limit of {limit:,} bytes")
    if not data:
        raise HTTPError(400, f"{label}: empty file")
    try:
        return label, decode_image(data, label=label, max_pixels=svc.limits.max_pixels)
    except ImageError as exc:
        status = 413 if "pixels" in str(exc) or "bomb" in str(exc) else 400
        raise HTTPError(status, str(exc)) from None


def faces_of(svc: Service, pipe, label: str, image: np.ndarray):
    from ..datasets import Sample

    result = pipe.run([Sample(label, image)])[0]
    if result.error:
        raise HTTPError(400, result.error)
    if len(result.faces) > svc.limits.max_faces:
        raise HTTPError(422, f"{label}: {len(result.faces)} faces, over the limit of {svc.limits.max_faces} per image")
    return result.faces


def _identify(svc: Service, label, img, topk) -> models.Identified:
    from ..identify import identify

    with svc.pipelines.get() as pipe:
        faces = faces_of(svc, pipe, label, img)
    h, w = int(img.shape[0]), int(img.shape[1])
    if not faces:
        return models.Identified(faces=[], width=w, height=h)
    with svc.store.reading() as (g, cal):
        preds = identify(g, np.stack([f.embedding for f in faces]), topk=topk, calibration=cal)
        threshold, source = (cal.threshold, cal.source) if cal else (None, "closed-set")
    return models.Identified(
        faces=[
            models.IdentifiedFace(
                box=[round(float(v), 1) for v in f.box],
                score=round(float(f.score), 4),
                pred=p.name,
                candidate=p.candidate,
                distance=round(p.distance, 4),
                votes=p.votes,
                topk=[models.Evidence(name=n.name, distance=round(n.distance, 4)) for n in p.neighbors],
            )
            for f, p in zip(faces, preds)
        ],
        threshold=threshold,
        threshold_source=source,
        width=w,
        height=h,
    )


def _verify(svc: Service, a, b) -> models.Verified:
    from ..calibrate import pairwise_distances

    with svc.pipelines.get() as pipe:
        fa, fb = faces_of(svc, pipe, *a), faces_of(svc, pipe, *b)
    templates = []
    for (label, _), faces in ((a, fa), (b, fb)):
        if not faces:
            raise HTTPError(422, f"{label}: no face found")
        templates.append(faces[0].embedding[None])
    with svc.store.reading() as (g, cal):
        threshold = cal.threshold if cal else svc.spec.default_threshold
        source = cal.source if cal else "default"
        metric = g.metric
    d = float(pairwise_distances(templates[0], templates[1], metric)[0, 0])
    return models.Verified(same=d <= threshold, distance=round(d, 4), threshold=threshold, threshold_source=source)


def _enrol(svc: Service, name, decoded) -> models.Enrolled:
    vectors, ids, skipped = [], [], []
    with svc.pipelines.get() as pipe:
        for label, img in decoded:
            faces = faces_of(svc, pipe, label, img)
            if not faces:
                skipped.append(models.Skipped(file=label, error="no face found"))
                continue
            vectors.append(faces[0].embedding)  # the most prominent face (large and central)
            ids.append(f"api:{name}:{label}")
    if not vectors:
        raise HTTPError(422, f"no face found in any of the {len(decoded)} images; nothing was enrolled")
    total = svc.store.enrol(name, np.stack(vectors), ids)
    return models.Enrolled(name=name, added=len(vectors), images=total, skipped=skipped)


async def _run(fn):
    """Run blocking model work in the thread pool, translating library errors to 4xx."""
    from starlette.concurrency import run_in_threadpool

    try:
        return await run_in_threadpool(fn)
    except NoFaceError as exc:
        raise HTTPError(422, str(exc)) from None
    except FacerecError as exc:
        raise HTTPError(400, str(exc)) from None
