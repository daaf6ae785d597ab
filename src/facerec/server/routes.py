"""The ``/v1`` routes and ``/healthz``: each parses its request, calls the :class:`Service`
(injected with ``Depends``, never a closed-over global, so a test or another app can serve another
store), and builds its typed answer; refusals are answered ``{"error": message}`` with a 4xx or
5xx status (:mod:`facerec.server.statuses`).

The event loop only reads request bodies; the work runs in the service's worker threads.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, UploadFile

from facerec.errors import InputError, NotEnrolledError
from facerec.server import models
from facerec.server.limits import CONTENT_TYPES, VIDEO_TYPES, HTTPError, check_name
from facerec.server.security import AUTHORIZED
from facerec.server.service import Enrolment, Identification, Service, Upload, Verification
from facerec.server.statuses import ERRORS, in_worker
from facerec.text import printable
from facerec.video.analyze import DEFAULT_EVERY


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

    def refused(exc: Exception) -> HTTPError | None:
        if isinstance(exc, NotEnrolledError):
            return HTTPError(404, str(exc))
        if isinstance(exc, InputError):  # a rule of the gallery keeps the person (SaveError is no InputError)
            return HTTPError(409, str(exc))
        return None

    return models.Removed(removed=name, images=await in_worker(svc, lambda: svc.remove(name), first=refused))


@v1.post("/identify", response_model=models.Identified)
async def identify_faces(image: UploadFile, topk: int = 5, svc: Service = Depends(service)):
    if not 1 <= topk <= 50:
        raise HTTPError(422, f"topk must be between 1 and 50, got {topk}")
    upload = await read_upload(svc, image, "image")
    return await in_worker(svc, lambda: identified(svc.identify(upload, topk)))


@v1.post("/identify-video", response_model=models.VideoIdentified)
async def identify_video(video: UploadFile, every: int = DEFAULT_EVERY, topk: int = 5, svc: Service = Depends(service)):
    """Every person seen in a video: faces followed across frames, one answer per track (the same
    JSON as ``facerec infer VIDEO --format json``)."""
    if not 1 <= every <= 1000:
        raise HTTPError(422, f"every must be between 1 and 1000, got {every}")
    if not 1 <= topk <= 50:
        raise HTTPError(422, f"topk must be between 1 and 50, got {topk}")
    upload = await read_upload(svc, video, "video", types=VIDEO_TYPES, limit=svc.limits.max_video_bytes)

    def work():
        report = svc.identify_video(upload, every, topk)
        return models.VideoIdentified(tracks=[t.to_json() for t in report.tracks], summary=report.summary())

    return await in_worker(svc, work)


@v1.post("/verify", response_model=models.Verified)
async def verify_faces(image_a: UploadFile, image_b: UploadFile, svc: Service = Depends(service)):
    a = await read_upload(svc, image_a, "image_a")
    b = await read_upload(svc, image_b, "image_b")
    return await in_worker(svc, lambda: verified(svc.verify(a, b)))


@v1.post("/people/{name}/faces", response_model=models.Enrolled, status_code=201)
async def enrol(name: str, images: list[UploadFile], svc: Service = Depends(service)):
    name = check_name(name)
    if len(images) > svc.limits.max_files:
        raise HTTPError(413, f"{len(images)} images in one request, over the limit of {svc.limits.max_files}")
    uploads = [await read_upload(svc, up, f"images[{i}]") for i, up in enumerate(images)]
    return await in_worker(svc, lambda: enrolled(svc.enrol(name, uploads)))


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


# -- the request in, on the event loop ------------------------------------------------------------
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


# -- the answers out, built in the worker with the work -------------------------------------------
def identified(r: Identification) -> models.Identified:
    if not r.faces:  # nothing was judged: no threshold to state
        return models.Identified(faces=[], width=r.width, height=r.height)
    cal = r.calibration
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
                confidence=c.words,
                confidence_note=c.explain(),
            )
            for f, p, c in zip(r.faces, r.predictions, r.confidence)
        ],
        threshold=cal.threshold if cal else None,
        threshold_source=cal.source if cal else "closed-set",
        threshold_promise=cal.promise() if cal else "closed set: no face is answered unknown",
        fpir=cal.fpir if cal else None,
        width=r.width,
        height=r.height,
    )


def verified(r: Verification) -> models.Verified:
    cal = r.calibration
    return models.Verified(
        same=r.same,
        distance=round(r.distance, 4),
        threshold=cal.threshold,
        threshold_source=cal.source,
        threshold_promise=cal.promise(),
        far=cal.far,
        tar=cal.tar,
    )


def enrolled(r: Enrolment) -> models.Enrolled:
    return models.Enrolled(
        name=r.name,
        added=r.added,
        images=r.images,
        skipped=[models.Skipped(file=label, error=why) for label, why in r.skipped],
        warnings=r.warnings,
    )
