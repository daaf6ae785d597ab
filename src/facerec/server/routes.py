"""The ``/v1`` routes and ``/healthz``. Each gets the :class:`Service` injected (``Depends``), never
a closed-over global, so a test or another app can serve another store.

The event loop only reads request bodies. Decoding, detection and embedding run in the service's
own pool of ``workers`` threads, a request's images one at a time (so one request holds one
decoded image, within its pixel budget), and at most ``max_pending`` requests hold or wait for a
worker: the next is answered 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from fastapi import APIRouter, Depends, Request, UploadFile

from facerec.embed import EmbedderSpec
from facerec.errors import (
    FacerecError,
    ImageError,
    InputError,
    NoFaceError,
    NotEnrolledError,
    SaveError,
    StoreUnavailable,
)
from facerec.images import decode_image, peek_size
from facerec.server import models
from facerec.server.limits import CONTENT_TYPES, VIDEO_TYPES, EmbedBudget, HTTPError, Limits, check_name
from facerec.server.security import AUTHORIZED
from facerec.store import ServedGallery
from facerec.text import printable

#: How much lower (nice) the image workers run than the event loop.
WORKER_NICE = 5

ERRORS = {code: {"model": models.ErrorBody} for code in (400, 401, 403, 404, 409, 413, 415, 422, 500, 503)}


@dataclass
class Service:
    """What the routes work with: the gallery store, the pipelines (loaded in the background),
    the worker threads and the request limits."""

    store: ServedGallery
    limits: Limits
    spec: EmbedderSpec
    version: str
    workers: int = 2
    pipelines: object = None  # app.PipelinePool, once loaded
    people: object = None  # clusters.PeopleFolder, when served with a people folder
    load_error: str | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    executor: ThreadPoolExecutor = None
    pending: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self):
        if self.executor is None:
            self.executor = ThreadPoolExecutor(
                self.workers, thread_name_prefix="facerec-worker", initializer=_yield_to_the_event_loop
            )

    def load(self, make_pool) -> None:
        """Build the pipelines (models load here), then mark the service ready; run in a thread."""
        try:
            self.pipelines = make_pool()
        except Exception as exc:  # reported by /healthz and every request, never lost in a thread
            self.load_error = f"the models could not be loaded: {exc}"
        finally:
            self.ready.set()

    async def run(self, fn):
        """``fn()`` in a worker thread, after the models are ready; 503 when too many wait."""
        with self._lock:
            if self.pending >= self.limits.max_pending:
                raise HTTPError(
                    503,
                    f"busy: {self.pending} requests are being served or waiting; retry in a second",
                    {"retry-after": "1"},
                )
            self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self._call, fn)
        finally:
            with self._lock:
                self.pending -= 1

    def _call(self, fn):
        if not self.ready.wait(self.limits.load_wait_s):
            raise HTTPError(503, "the models are still loading; retry shortly", {"retry-after": "5"})
        if self.load_error:
            raise HTTPError(503, self.load_error)
        try:
            return fn()
        except NoFaceError as exc:
            raise HTTPError(422, str(exc)) from None
        except StoreUnavailable as exc:  # the database is down: nothing changed, retry later
            raise HTTPError(503, str(exc), {"retry-after": "5"}) from None
        except SaveError as exc:
            raise HTTPError(500, str(exc)) from None
        except FacerecError as exc:
            raise HTTPError(400, str(exc)) from None


def _yield_to_the_event_loop() -> None:
    """Run this worker thread (and the torch threads it starts, which inherit it) at a lower CPU
    priority than the event loop: when images saturate the cores, the loop still reads requests
    and answers /healthz and 503s at once. Linux sets priority per thread; elsewhere a no-op."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at the loop's priority
        pass


async def service(request: Request) -> Service:  # async: no thread hop to fetch it
    return request.app.state.service


router = APIRouter()
v1 = APIRouter(prefix="/v1", responses=ERRORS)


@router.get("/healthz", response_model=models.Health)
async def healthz(request: Request, svc: Service = Depends(service)):
    # On the event loop itself, not a thread: under load the threads queue behind the GIL and the
    # image work, and a probe that waits there times out and gets a busy replica restarted.
    # Nothing here blocks or takes a lock (see ServedGallery.totals).
    people, faces = svc.store.totals()
    # where the gallery lives (a path, a database URI) is for clients with the key, when there is one
    trusted, sync_error = request.scope.get(AUTHORIZED, False), svc.store.sync_error
    return models.Health(
        status="ok" if not svc.load_error else "error",
        ready=svc.ready.is_set() and not svc.load_error,
        people=people,
        faces=faces,
        embedder=svc.spec.name,
        version=svc.version,
        error=svc.load_error,
        store=svc.store.store.uri if trusted else "",
        store_error=sync_error if trusted or not sync_error else "the store is unavailable",
    )


@v1.get("/people", response_model=models.People)
def people(svc: Service = Depends(service)):
    return models.People(people=[models.Person(name=n, images=c) for n, c in svc.store.people()])


@v1.delete("/people/{name}", response_model=models.Removed)
async def remove(name: str, svc: Service = Depends(service)):
    name = check_name(name)

    def work():
        try:
            return svc.store.remove(name)
        except NotEnrolledError as exc:
            raise HTTPError(404, str(exc)) from None
        except SaveError:  # StoreUnavailable too: 503 / 500 in Service._call
            raise
        except InputError as exc:
            raise HTTPError(409, str(exc)) from None

    return models.Removed(removed=name, images=await svc.run(work))


@v1.post("/identify", response_model=models.Identified)
async def identify_faces(image: UploadFile, topk: int = 5, svc: Service = Depends(service)):
    if not 1 <= topk <= 50:
        raise HTTPError(422, f"topk must be between 1 and 50, got {topk}")
    upload = await read_upload(svc, image, "image")
    return await svc.run(lambda: _identify(svc, upload, topk))


@v1.post("/identify-video", response_model=models.VideoIdentified)
async def identify_video(video: UploadFile, every: int = 1, topk: int = 5, svc: Service = Depends(service)):
    """Every person seen in a video: faces followed across frames, one answer per track (the same
    JSON as ``facerec infer VIDEO --format json``)."""
    if not 1 <= every <= 1000:
        raise HTTPError(422, f"every must be between 1 and 1000, got {every}")
    if not 1 <= topk <= 50:
        raise HTTPError(422, f"topk must be between 1 and 50, got {topk}")
    upload = await read_upload(svc, video, "video", types=VIDEO_TYPES, limit=svc.limits.max_video_bytes)
    return await svc.run(lambda: _identify_video(svc, upload, every, topk))


@v1.post("/verify", response_model=models.Verified)
async def verify_faces(image_a: UploadFile, image_b: UploadFile, svc: Service = Depends(service)):
    a = await read_upload(svc, image_a, "image_a")
    b = await read_upload(svc, image_b, "image_b")
    return await svc.run(lambda: _verify(svc, a, b))


@v1.post("/people/{name}/faces", response_model=models.Enrolled, status_code=201)
async def enrol(name: str, images: list[UploadFile], svc: Service = Depends(service)):
    name = check_name(name)
    if len(images) > svc.limits.max_files:
        raise HTTPError(413, f"{len(images)} images in one request, over the limit of {svc.limits.max_files}")
    uploads = [await read_upload(svc, up, f"images[{i}]") for i, up in enumerate(images)]
    return await svc.run(lambda: _enrol(svc, name, uploads))


@v1.get("/config", response_model=models.ServiceConfig)
def config(svc: Service = Depends(service)):
    lim = svc.limits
    return models.ServiceConfig(
        max_upload_bytes=lim.max_upload_bytes,
        max_pixels=lim.max_pixels,
        max_faces=lim.max_faces,
        max_files=lim.max_files,
        max_video_bytes=lim.max_video_bytes,
        max_video_seconds=lim.max_video_seconds,
        max_video_frames=lim.max_video_frames,
        max_video_fps=lim.max_video_fps,
        max_video_faces=lim.max_video_faces,
        embedder=svc.spec.name,
        people_folder=svc.people is not None,
    )


router.include_router(v1)


# -- reading on the event loop; the work in the pool ----------------------------------------------
@dataclass
class Upload:
    label: str  # "field (file name)", safe to print and to store
    data: bytes


async def read_upload(
    svc: Service, upload: UploadFile, field: str, *, types=CONTENT_TYPES, limit: int | None = None
) -> Upload:
    limit = limit or svc.limits.max_upload_bytes
    label = f"{field} ({printable(upload.filename or 'upload')[:120]})"
    ctype = (upload.content_type or "").split(";")[0].strip().lower()
    if ctype not in types:
        kind = "a video" if types is VIDEO_TYPES else "an image"
        raise HTTPError(
            415,
            f"{label}: content type {printable(ctype) or 'none'!r} is not {kind} type we read "
            f"({', '.join(sorted(types))})",
        )
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise HTTPError(413, f"{label}: over the upload limit of {limit:,} bytes")
    if not data:
        raise HTTPError(400, f"{label}: empty file")
    return Upload(label, data)


class PixelBudget:
    """The decoded pixels one request may spend, across its images (decoded one at a time)."""

    def __init__(self, limits: Limits):
        self.limits, self.left = limits, limits.max_request_pixels

    def decode(self, up: Upload) -> np.ndarray:
        try:
            w, h = peek_size(up.data, label=up.label)
            if w * h > self.left:
                raise HTTPError(
                    413,
                    f"{up.label}: {w}x{h} pixels would pass this request's budget of "
                    f"{self.limits.max_request_pixels:,} decoded pixels; send fewer or smaller images",
                )
            image = decode_image(up.data, label=up.label, max_pixels=self.limits.max_pixels)
        except ImageError as exc:
            status = 413 if "pixels" in str(exc) or "bomb" in str(exc) else 400
            raise HTTPError(status, str(exc)) from None
        self.left -= w * h
        return image


def faces_of(svc: Service, pipe, up: Upload, image: np.ndarray):
    """Every face of one decoded upload; more than ``max_faces`` is refused before any is embedded."""
    from facerec.datasets import Sample

    result = pipe.run([Sample(up.label, image)], max_faces=svc.limits.max_faces)[0]
    if result.error:
        raise HTTPError(422 if "over the limit" in result.error else 400, result.error)
    return result.faces


def _identify(svc: Service, up: Upload, topk: int) -> models.Identified:
    from facerec.gallery.identify import identify

    image = PixelBudget(svc.limits).decode(up)
    with svc.pipelines.get() as pipe:
        faces = faces_of(svc, pipe, up, image)
    h, w = int(image.shape[0]), int(image.shape[1])
    del image
    if not faces:
        return models.Identified(faces=[], width=w, height=h)
    with svc.store.reading() as (g, cal):
        preds = identify(g, np.stack([f.embedding for f in faces]), topk=topk, calibration=cal, one_image=True)
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
                note=p.note,
            )
            for f, p in zip(faces, preds)
        ],
        threshold=threshold,
        threshold_source=source,
        threshold_promise=cal.promise() if cal else "closed set: no face is answered unknown",
        fpir=cal.fpir if cal else None,
        width=w,
        height=h,
    )


def _verify(svc: Service, a: Upload, b: Upload) -> models.Verified:
    from facerec.gallery.calibration import verification_threshold
    from facerec.gallery.distance import pairwise_distances

    budget, templates = PixelBudget(svc.limits), []
    with svc.pipelines.get() as pipe:
        for up in (a, b):
            faces = faces_of(svc, pipe, up, budget.decode(up))
            if not faces:
                raise HTTPError(422, f"{up.label}: no face found")
            templates.append(faces[0].embedding[None])
    with svc.store.reading() as (g, _):
        cal = verification_threshold(g.pipeline, metric=g.metric)
        metric = g.metric
    d = float(pairwise_distances(templates[0], templates[1], metric)[0, 0])
    return models.Verified(
        same=d <= cal.threshold,
        distance=round(d, 4),
        threshold=cal.threshold,
        threshold_source=cal.source,
        threshold_promise=cal.promise(),
        far=cal.far,
        tar=cal.tar,
    )


def _enrol(svc: Service, name: str, uploads: list[Upload]) -> models.Enrolled:
    import hashlib

    from facerec.gallery.estimator import face_key

    vectors, ids, skipped, face_ids, boxes = [], [], [], [], []
    budget = PixelBudget(svc.limits)
    with svc.pipelines.get() as pipe:
        for up in uploads:  # one decoded image at a time
            faces = faces_of(svc, pipe, up, budget.decode(up))
            if not faces:
                skipped.append(models.Skipped(file=up.label, error="no face found"))
                continue
            vectors.append(faces[0].embedding)  # the most prominent face (large and central)
            ids.append(f"api:{name}:{up.label}")
            # the same photo enrolled again for the same person (a retried request) is one face
            face_ids.append(face_key(name, hashlib.sha256(up.data).hexdigest()))
            boxes.append(np.asarray(faces[0].box, np.float32))
    if not vectors:
        raise HTTPError(422, f"no face found in any of the {len(uploads)} images; nothing was enrolled")
    copies_before = _near_copies(svc)
    total = svc.store.enrol(name, np.stack(vectors), ids, {"face_id": face_ids, "box": np.stack(boxes), "source": ids})
    copies = _near_copies(svc) - copies_before
    warnings = (
        [
            f"{copies} enrolled faces are near-copies of another person's face (one photo under two names?): "
            "they are kept out of the open-set threshold's measurement; check who is in these photos"
        ]
        if copies > 0
        else []
    )
    return models.Enrolled(name=name, added=len(vectors), images=total, skipped=skipped, warnings=warnings)


def _near_copies(svc: Service) -> int:
    cal = svc.store.calibration
    return cal.near_copies if cal is not None else 0


def _identify_video(svc: Service, up: Upload, every: int, topk: int) -> models.VideoIdentified:
    import tempfile
    from pathlib import Path

    from facerec.video import VideoOptions, open_video
    from facerec.video.analyze import decide, follow_faces, tracker_config
    from facerec.video.frames import VideoError, VideoOverBudget

    lim = svc.limits
    options = VideoOptions(every=every, topk=topk)
    with svc.store.reading() as (_, cal):
        calibration = cal
    # FFmpeg reads a file; it lives in a private temporary folder only while this request runs
    with tempfile.TemporaryDirectory(prefix="facerec-video-") as tmp:
        path = Path(tmp) / "upload"
        path.write_bytes(up.data)
        try:
            source = open_video(
                path,
                max_seconds=lim.max_video_seconds,
                max_frames=lim.max_video_frames,
                max_fps=lim.max_video_fps,
                label=up.label,
            )
            if source.width * source.height > lim.max_pixels:
                source.close()
                raise HTTPError(
                    413,
                    f"{up.label}: {source.width}x{source.height} frames, over the limit of {lim.max_pixels:,} pixels",
                )
            with svc.pipelines.get() as pipe:
                budgeted = EmbedBudget(pipe, lim.max_video_faces, up.label)
                followed = follow_faces(source, budgeted, options, tracker_config(pipe, calibration))
        except VideoOverBudget as exc:  # too long, too many frames or faces: refused or stopped
            raise HTTPError(413, str(exc)) from None
        except VideoError as exc:
            raise HTTPError(400, str(exc)) from None
    with svc.store.reading() as (g, cal):
        report = decide(source, followed, g, cal, options)
    return models.VideoIdentified(tracks=[t.to_json() for t in report.tracks], summary=report.summary())
