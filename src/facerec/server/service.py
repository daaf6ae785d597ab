"""The work behind ``facerec serve``, free of HTTP: identify, verify, enrol and remove with the
served gallery and the pipelines, and a video's tracks. A test, a script or another front end can
hold a :class:`Service` and call it; :mod:`facerec.server.routes` is the HTTP edge over it.

The work runs in the service's own pool of ``workers`` threads (:meth:`Service.run`), a request's
images decoded one at a time (so one request holds one decoded image, within its pixel budget),
and at most ``max_pending`` requests hold or wait for a worker: the next is refused as busy.

Refusals are library errors (:mod:`facerec.errors`) or the few defined here; each message names the
file and the limit or rule. :mod:`facerec.server.statuses` says which HTTP status answers which.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from facerec.embed import EmbedderSpec
from facerec.errors import FacerecError, ImageError, InputError, NoFaceError
from facerec.gallery.confidence import ConfidenceScale
from facerec.images import decode_image, peek_size
from facerec.people.served import ServedPeopleFolder
from facerec.server.limits import EmbedBudget, Limits
from facerec.store import ServedGallery

#: How much lower (nice) the image workers run than the event loop.
WORKER_NICE = 5


class ServiceUnavailable(FacerecError):
    """The service cannot take the work now: too busy, its models still loading or failed to load.
    ``retry_after``: seconds after which a retry may succeed (None: it will not by itself)."""

    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class OverLimit(InputError):
    """A request asks for more than a limit allows (decoded pixels, a video's frame size); refused
    whole, before the work it would cost."""


class TooManyFaces(InputError):
    """An image holds more faces than ``max_faces``: refused before any is embedded."""


class PipelinePool:
    """A few independent pipelines (models are not all safe to call from two threads at once),
    checked out one request at a time: ``size`` requests embed in parallel."""

    def __init__(self, make, size: int):
        self._free: queue.Queue = queue.Queue()
        self._free.put(make())  # the service is ready with one: the others load while it answers
        self.size, self.grow_error = 1, None
        if size > 1:
            threading.Thread(target=self._grow, args=(make, size - 1), name="facerec-pool", daemon=True).start()

    def _grow(self, make, more: int) -> None:
        """Build the other pipelines in the background (each loads its models again: seconds), so
        that /healthz says ready as soon as the first can answer. A failure here leaves the pool
        smaller, not the service down: the first pipeline loaded the same models."""
        for _ in range(more):
            try:
                pipe = make()
            except Exception as exc:  # noqa: BLE001 - reported by /healthz's pool size, never lost
                self.grow_error = str(exc)
                return
            self._free.put(pipe)
            self.size += 1

    @contextmanager
    def get(self):
        pipe = self._free.get()
        try:
            yield pipe
        finally:
            self._free.put(pipe)


@dataclass
class Upload:
    """One uploaded file, read whole: ``label`` ("field (file name)") is safe to print and to store."""

    label: str
    data: bytes


@dataclass
class Identification:
    """The faces of one image and who each is. ``calibration`` is the open-set rule they were
    judged by (None: a closed set, no face is answered unknown)."""

    faces: list  # the pipeline's faces: box, score, embedding
    predictions: list  # one facerec.gallery.identify prediction per face
    calibration: object
    width: int
    height: int
    confidence: list = field(default_factory=list)  # one facerec.gallery.confidence.Confidence per face


@dataclass
class Verification:
    """The distance between two faces and the verification threshold it is judged by."""

    distance: float
    calibration: object  # facerec.gallery.calibration.Calibration

    @property
    def same(self) -> bool:
        return self.distance <= self.calibration.threshold


@dataclass
class Enrolment:
    name: str
    added: int  # faces this call enrolled
    images: int  # the person's faces in the gallery now
    skipped: list[tuple[str, str]]  # (file label, why) for each upload that added nothing
    warnings: list[str]  # what was stored but looks wrong


@dataclass
class Service:
    """What the service holds: the gallery store, the pipelines (loaded in the background), the
    worker threads and the request limits, and the people folder when it was given one.

    The work methods (:meth:`identify`, :meth:`verify`, :meth:`enrol`, :meth:`identify_video`,
    :meth:`remove`) block on decoding and the models: from an event loop, call them through
    :meth:`run`."""

    store: ServedGallery
    limits: Limits
    spec: EmbedderSpec
    version: str
    workers: int = 2
    pipelines: PipelinePool | None = None  # once loaded
    people: ServedPeopleFolder | None = None  # when served with a people folder
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
        """``fn()`` in a worker thread, after the models are ready; refused at once when too many wait."""
        with self._lock:
            if self.pending >= self.limits.max_pending:
                raise ServiceUnavailable(
                    f"busy: {self.pending} requests are being served or waiting; retry in a second", retry_after=1
                )
            self.pending += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self.executor, self._when_ready, fn)
        finally:
            with self._lock:
                self.pending -= 1

    def _when_ready(self, fn):
        if not self.ready.wait(self.limits.load_wait_s):
            raise ServiceUnavailable("the models are still loading; retry shortly", retry_after=5)
        if self.load_error:
            raise ServiceUnavailable(self.load_error)
        return fn()

    # -- the work ---------------------------------------------------------------------------------
    def identify(self, up: Upload, topk: int) -> Identification:
        """Every face of one image, each named from the gallery (or unknown past the threshold)."""
        from facerec.gallery.identify import identify

        image = PixelBudget(self.limits).decode(up)
        with self.pipelines.get() as pipe:
            faces = self._faces_of(pipe, up, image)
        h, w = int(image.shape[0]), int(image.shape[1])
        del image  # the decoded image is not needed to search the gallery
        if not faces:
            return Identification([], [], None, w, h)
        with self.store.reading() as (g, cal):
            preds = identify(g, np.stack([f.embedding for f in faces]), topk=topk, calibration=cal, one_image=True)
            scale = ConfidenceScale(g, cal)
        return Identification(faces, preds, cal, w, h, [scale.of(p) for p in preds])

    def verify(self, a: Upload, b: Upload) -> Verification:
        """Whether the most prominent faces of two images are one person."""
        from facerec.gallery.calibration import verification_threshold
        from facerec.gallery.distance import pairwise_distances

        budget, templates = PixelBudget(self.limits), []
        with self.pipelines.get() as pipe:
            for up in (a, b):
                faces = self._faces_of(pipe, up, budget.decode(up))
                if not faces:
                    raise NoFaceError(f"{up.label}: no face found")
                templates.append(faces[0].embedding[None])
        with self.store.reading() as (g, _):
            cal = verification_threshold(g.pipeline, metric=g.metric)
            metric = g.metric
        return Verification(float(pairwise_distances(templates[0], templates[1], metric)[0, 0]), cal)

    def enrol(self, name: str, uploads: list[Upload]) -> Enrolment:
        """The most prominent face of each upload enrolled as ``name``; uploads without a face are
        skipped, none with a face at all is a NoFaceError."""
        import hashlib

        from facerec.gallery.estimator import face_key

        vectors, ids, skipped, face_ids, boxes = [], [], [], [], []
        budget = PixelBudget(self.limits)
        with self.pipelines.get() as pipe:
            for up in uploads:  # one decoded image at a time
                faces = self._faces_of(pipe, up, budget.decode(up))
                if not faces:
                    skipped.append((up.label, "no face found"))
                    continue
                vectors.append(faces[0].embedding)  # the most prominent face (large and central)
                ids.append(f"api:{name}:{up.label}")
                # the same photo enrolled again for the same person (a retried request) is one face
                face_ids.append(face_key(name, hashlib.sha256(up.data).hexdigest()))
                boxes.append(np.asarray(faces[0].box, np.float32))
        if not vectors:
            raise NoFaceError(f"no face found in any of the {len(uploads)} images; nothing was enrolled")
        copies_before = self._near_copies()
        total = self.store.enrol(
            name, np.stack(vectors), ids, {"face_id": face_ids, "box": np.stack(boxes), "source": ids}
        )
        copies = self._near_copies() - copies_before
        warnings = (
            [
                f"{copies} enrolled faces are near-copies of another person's face (one photo under two names?): "
                "they are kept out of the open-set threshold's measurement; check who is in these photos"
            ]
            if copies > 0
            else []
        )
        return Enrolment(name, len(vectors), total, skipped, warnings)

    def remove(self, name: str) -> int:
        """Every face of ``name`` out of the gallery; how many there were (NotEnrolledError: none)."""
        return self.store.remove(name)

    def identify_video(self, up: Upload, every: int, topk: int):
        """Every person seen in a video: faces followed across frames, one answer per track
        (a :class:`facerec.video.VideoReport`)."""
        import tempfile
        from pathlib import Path

        from facerec.video import VideoOptions, open_video
        from facerec.video.analyze import decide, follow_faces, tracker_config

        lim = self.limits
        options = VideoOptions(every=every, topk=topk)
        with self.store.reading() as (_, cal):
            calibration = cal
        # FFmpeg reads a file; it lives in a private temporary folder only while this request runs
        with tempfile.TemporaryDirectory(prefix="facerec-video-") as tmp:
            path = Path(tmp) / "upload"
            path.write_bytes(up.data)
            source = open_video(
                path,
                max_seconds=lim.max_video_seconds,
                max_frames=lim.max_video_frames,
                max_fps=lim.max_video_fps,
                label=up.label,
            )
            if source.width * source.height > lim.max_pixels:
                source.close()
                raise OverLimit(
                    f"{up.label}: {source.width}x{source.height} frames, over the limit of {lim.max_pixels:,} pixels"
                )
            with self.pipelines.get() as pipe:
                # too long, too many frames or faces: VideoOverBudget, refused or stopped
                budgeted = EmbedBudget(pipe, lim.max_video_faces, up.label)
                followed = follow_faces(source, budgeted, options, tracker_config(pipe, calibration))
        with self.store.reading() as (g, cal):
            return decide(source, followed, g, cal, options)

    def _faces_of(self, pipe, up: Upload, image: np.ndarray):
        """Every face of one decoded upload; more than ``max_faces`` is refused before any is embedded."""
        from facerec.datasets import Sample

        result = pipe.run([Sample(up.label, image)], max_faces=self.limits.max_faces)[0]
        if result.error:
            raise (TooManyFaces if "over the limit" in result.error else InputError)(result.error)
        return result.faces

    def _near_copies(self) -> int:
        cal = self.store.calibration
        return cal.near_copies if cal is not None else 0


class PixelBudget:
    """The decoded pixels one request may spend, across its images (decoded one at a time)."""

    def __init__(self, limits: Limits):
        self.limits, self.left = limits, limits.max_request_pixels

    def decode(self, up: Upload) -> np.ndarray:
        try:
            w, h = peek_size(up.data, label=up.label)
            if w * h > self.left:
                raise OverLimit(
                    f"{up.label}: {w}x{h} pixels would pass this request's budget of "
                    f"{self.limits.max_request_pixels:,} decoded pixels; send fewer or smaller images"
                )
            image = decode_image(up.data, label=up.label, max_pixels=self.limits.max_pixels)
        except ImageError as exc:
            if "pixels" in str(exc) or "bomb" in str(exc):  # a decompression bomb, an image too large
                raise OverLimit(str(exc)) from None
            raise
        self.left -= w * h
        return image


def _yield_to_the_event_loop() -> None:
    """Run this worker thread (and the torch threads it starts, which inherit it) at a lower CPU
    priority than the event loop: when images saturate the cores, the loop still reads requests
    and answers /healthz and refusals at once. Linux sets priority per thread; elsewhere a no-op."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICE)
    except (AttributeError, OSError):  # not Linux, or not allowed: run at the loop's priority
        pass
