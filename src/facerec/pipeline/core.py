"""The one pipeline: decode -> detect -> pick the subject -> crop -> embed, batched and overlapped.

Every command runs through :class:`Pipeline`. While the detector works on batch i, worker threads
decode batch i+1 and a second thread embeds batch i-1's crops (on a CPU the stages then share the
cores; on a GPU the images stay on the device from decoding to embedding).
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from facerec.align.croppers import cropper_for
from facerec.align.croppers import to_uint8 as _to_uint8
from facerec.datasets import Sample
from facerec.detect.base import Detection, Detector, by_prominence
from facerec.detect.registry import create_detector
from facerec.embed import Embedder, create_embedder
from facerec.embed.base import l2_normalize
from facerec.errors import ImageError, InputError
from facerec.image_batch import ImageBatch
from facerec.images import check_rgb_array
from facerec.limits import DETECT_BATCH_PIXELS
from facerec.pipeline.cache import FaceCache
from facerec.pipeline.config import DEFAULT_BATCH_SIZE, DEFAULT_GPU_BATCH_SIZE, PipelineConfig
from facerec.pipeline.decode import Decoder
from facerec.pipeline.options import PipelineOptions, as_options
from facerec.pipeline.results import Face, ImageResult
from facerec.progress import progress
from facerec.runtime.device import resolve_device

# reading threads feeding nvJPEG: more contend for the GIL with the thread that launches detection's
# kernels (H200, 13,233 LFW images end to end: 3,052 img/s with 6, 2,420 with 16)
GPU_DECODE_THREADS = 6
CPU_DECODE_THREADS = 2
CACHE_SAVE_EVERY = 2000  # images between cache checkpoints: an interrupted long run keeps its work


class Pipeline:
    """Images -> every face with box, landmarks, score and embedding. Build with :meth:`create`
    (or :meth:`for_model`) from a :class:`~facerec.pipeline.options.PipelineOptions` (or its
    fields as keywords); models load once per object, never at import. One object serves one
    thread at a time (it batches and overlaps internally): a server keeps one per worker.
    """

    def __init__(
        self, config: PipelineConfig, *, detector: Detector, embedder: Embedder, options: PipelineOptions | None = None
    ):
        """The stages already built; ``options`` (its device resolved, as :meth:`create` passes
        it; default: the CPU) give the decoder, the batches and the cache."""
        options = options or PipelineOptions(device="cpu")
        device = resolve_device(options.device)
        batch_size = options.batch_size or DEFAULT_BATCH_SIZE
        self.options = options
        self.config, self.detector, self.embedder, self.device = config, detector, embedder, device
        self.cropper = cropper_for(
            embedder.spec,
            margin=config.margin,
            whole_image=getattr(detector, "whole_image", False),
            alignment=config.alignment,
        )
        self.decoder = Decoder(options.decoder, device=device, max_pixels=options.max_pixels)
        workers = options.workers
        if workers is None:
            gpu = device.startswith("cuda")
            workers = min(GPU_DECODE_THREADS, os.cpu_count() or 1) if gpu else CPU_DECODE_THREADS
        self.batch_size, self.workers, self.max_pixels = batch_size, workers, options.max_pixels
        self.cache_dir = Path(options.cache_dir) if options.cache_dir else None
        self._caches: dict[bool, FaceCache] = {}
        self.cache_entries: int | None = None  # a bound on each in-memory cache (a long-running server)

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def create(cls, options: PipelineOptions | None = None, **keywords) -> Pipeline:
        """The pipeline ``options`` describe, open choices at their defaults; ``keywords`` (any
        :class:`~facerec.pipeline.options.PipelineOptions` field) over them:
        ``Pipeline.create(embedder="facenet-casia", device="cpu")``."""
        opts = as_options(options, **keywords).with_defaults()
        device = resolve_device(opts.device)
        batch_size = opts.batch_size or (DEFAULT_GPU_BATCH_SIZE if device.startswith("cuda") else DEFAULT_BATCH_SIZE)
        opts = opts.replace(device=device, batch_size=batch_size)
        config = opts.config()
        det = create_detector(opts.detector, device=device, batch_size=batch_size, weights_dir=opts.weights_dir)
        model = (
            create_embedder(
                opts.embedder,
                weights=None if opts.weights is None else str(opts.weights),
                device=device,
                precision=opts.precision,
                compile=opts.compile,
            )
            if isinstance(opts.embedder, str)
            else opts.embedder  # an Embedder object already built (a benchmark's)
        )
        return cls(config, detector=det, embedder=model, options=opts)

    @classmethod
    def for_model(cls, gallery, options: PipelineOptions | None = None, **keywords) -> Pipeline:
        """The pipeline whose embeddings compare with ``gallery``'s: its embedder, weights, margin,
        flip and alignment; the detector and margin are the gallery's unless the options choose.
        Refuses another embedder or other weights, and a flip or alignment other than the gallery's."""
        p = gallery.pipeline
        if p is None:
            raise InputError("the gallery records no pipeline; build one with Pipeline.create(embedder=...)")
        opts = as_options(options, **keywords)
        # a flip or an alignment of its own would change every embedding against the gallery's
        # (a run may choose its detector and margin: infer --detector, --margin)
        wrong = {k: v for k, v in opts.differences(p).items() if k in ("flip", "alignment")}
        if wrong:
            have = {k: getattr(p, k) for k in wrong}
            raise InputError(f"the gallery's faces were embedded with {have}; this run asks for {wrong}")
        pipe = cls.create(opts.following(p))
        gallery.check_pipeline(embedder=pipe.config.embedder, weights_id=pipe.config.weights_id, dim=pipe.config.dim)
        return pipe

    # -- the library calls ---------------------------------------------------------------------
    def run(
        self,
        inputs,
        *,
        subject_only: bool = False,
        embed: bool = True,
        max_faces: int | None = None,
        quiet: bool = True,
        desc: str = "",
    ) -> list[ImageResult]:
        """Every input through the pipeline; a bad image becomes a result with ``error`` set.

        Args:
            inputs: :class:`~facerec.datasets.Sample` objects, image paths, or uint8 (H, W, 3) arrays.
            subject_only: embed only each image's most prominent face (training and evaluation:
                a labelled image stands for its subject); other faces are then not returned.
            embed: False stops after detection (faces without embeddings).
            max_faces: an image with more faces is an error, found right after detection: none
                of its faces is embedded (a server's bound on work per upload).
        """
        samples = [as_sample(x, i) for i, x in enumerate(inputs)]
        results = [ImageResult(s) for s in samples]
        cache = self._cache(subject_only) if embed else None
        lookup = cache.get if cache is not None else (lambda key: None)
        chunks = [(s, min(s + self.batch_size, len(samples))) for s in range(0, len(samples), self.batch_size)]
        since_save = 0
        with (
            ThreadPoolExecutor(self.workers) as pool,
            ThreadPoolExecutor(1) as ahead,
            ThreadPoolExecutor(1) as embedding,
            progress(total=len(samples), desc=desc, quiet=quiet) as bar,
        ):
            outstanding: deque = deque()
            pending = ahead.submit(self.decoder.decode, samples[: self.batch_size], pool, lookup) if chunks else None
            for c, (start, stop) in enumerate(chunks):
                decoded = pending.result()
                if c + 1 < len(chunks):
                    nxt = chunks[c + 1]
                    pending = ahead.submit(self.decoder.decode, samples[nxt[0] : nxt[1]], pool, lookup)
                todo = []
                for i, d in zip(range(start, stop), decoded):
                    if d.error is not None:
                        results[i].error = d.error
                    elif d.cached is not None and max_faces is not None and len(d.cached) > max_faces:
                        results[i].error = _crowded(results[i].sample.id, len(d.cached), max_faces)
                    elif d.cached is not None:
                        results[i].faces = [_copy(f) for f in d.cached]
                    else:
                        todo.append((i, d.key, d.image))
                outstanding.append(self._start(todo, results, embedding if embed else None, subject_only, max_faces))
                while len(outstanding) > 2:  # at most two batches of crops wait: memory stays bounded
                    self._finish(outstanding.popleft(), results, cache)
                bar.update(stop - start)
                since_save += stop - start
                if cache is not None and since_save >= CACHE_SAVE_EVERY:
                    cache.save()
                    if "detections" in self._caches:
                        self._caches["detections"].save()
                    since_save = 0
            while outstanding:
                self._finish(outstanding.popleft(), results, cache)
        if cache is not None:
            cache.save()
        if self._caches.get("detections") is not None:
            self._caches["detections"].save()
        return results

    def detect(self, image) -> list[Face]:
        """Every face in one image (path, bytes or uint8 (H, W, 3) array), most prominent first,
        without embeddings. Raises :class:`~facerec.errors.ImageError` for a bad image."""
        return _one(self.run([as_sample(image, 0)], embed=False))

    def embed(self, image, faces: list[Face] | None = None) -> np.ndarray:
        """float32 (n, d) unit embeddings of every face in ``image`` (most prominent first), or of
        the given ``faces`` (from :meth:`detect`) in their order; (0, d) when there is none."""
        if faces is None:
            found = _one(self.run([as_sample(image, 0)]))
            return np.stack([f.embedding for f in found]) if found else np.zeros((0, self.config.dim), np.float32)
        if not faces:
            return np.zeros((0, self.config.dim), np.float32)
        if isinstance(image, np.ndarray):  # a decoded frame: no content key to compute (Sample.read hashes it)
            host = check_rgb_array(image, label="<array 0>")
        else:
            sample = as_sample(image, 0)
            _, raw = sample.read()
            host = sample.decode(raw, self.max_pixels)
        batch = ImageBatch([host], self.device)
        crops = self.cropper.crop(batch, [(0, f.detection) for f in faces])
        return self._embed(crops)

    def embed_crops(self, crops) -> np.ndarray:
        """uint8 (n, S, S, 3) aligned crops (a fused embedder: a list with each part's) -> float32
        (n, d) unit vectors (flip-averaged when configured)."""
        if getattr(self.embedder, "parts", None) is not None:
            return self._embed([np.asarray(c) for c in crops])
        return self._embed(np.asarray(crops))

    def limit_caches(self, entries: int) -> None:
        """Keep at most ``entries`` images in each in-memory cache (a long-running server: repeated
        uploads are free, memory stays bounded); without a cache folder this turns the cache on."""
        self.cache_entries = entries
        for cache in self._caches.values():
            cache.max_entries = entries

    def crop_for(self, image: np.ndarray, box) -> np.ndarray:
        """The uint8 (S, S, 3) crop this pipeline cuts for a box in a host image (evaluation's
        no-face fallback); a list of each part's for a fused embedder."""
        batch = ImageBatch([image], self.device)
        crop = self.cropper.crop(batch, [(0, Detection(tuple(float(v) for v in box), 0.0))])
        if isinstance(crop, list):  # a fused embedder's: one crop per part
            return [_to_uint8(c)[0] for c in crop]
        return _to_uint8(crop)[0]

    # -- stages ---------------------------------------------------------------------------------
    def _cache(self, kind: bool | str) -> FaceCache | None:
        """The faces cache (``kind`` True: subjects only, False: every face), or with ``kind``
        "detections" the detector's own, which every embedder and crop style shares (a second
        embedder on the same images skips detection). None without a cache folder, unless
        :meth:`limit_caches` asked for caches in memory."""
        if self.cache_dir is None and self.cache_entries is None:
            return None
        if kind not in self._caches:
            path = None
            if self.cache_dir:
                if kind == "detections":
                    key, name = self.detector.id, f"detections_{self.config.detector}"
                else:
                    mode = "subject" if kind else "all"
                    key = f"{self.config.cache_key()}_{self.detector.id}_{mode}"
                    precision = _precision(self.embedder)
                    if precision != "fp32":  # int8 (and bf16) embeddings are not fp32's; fp32 keeps its old key
                        key += f"_{precision}"
                    name = f"faces_{self.config.embedder}_{self.config.detector}_{mode}"
                digest = hashlib.sha256(key.encode()).hexdigest()[:16]
                path = self.cache_dir / "cache" / f"{name}_{digest}.npz"
            cache = FaceCache(path, 0 if kind == "detections" else self.config.dim)
            cache.max_entries = self.cache_entries
            self._caches[kind] = cache
        return self._caches[kind]

    def _detect(self, batch: ImageBatch, keys: list | None) -> list[list[Detection]]:
        """The detector on the images of ``batch`` whose content (``keys``) the detection cache
        does not hold; the others from the cache."""
        cache = self._cache("detections") if keys is not None else None
        if cache is None:
            return self.detector.detect(batch)
        held = [cache.get(k) for k in keys]
        todo = [j for j, faces in enumerate(held) if faces is None]
        fresh = self.detector.detect(batch.subset(todo) if len(todo) < len(batch) else batch) if todo else []
        out = [None if faces is None else [f.detection for f in faces] for faces in held]
        for j, dets in zip(todo, fresh):
            out[j] = dets
            cache.put(
                keys[j], [Face(d.box, d.score, d.landmarks, np.zeros(0, np.float32), full_box=d.full_box) for d in dets]
            )
        return out

    def _start(
        self, todo, results, embedding: ThreadPoolExecutor | None, subject_only: bool, max_faces: int | None
    ) -> list:
        """Detect and crop every decoded image now; embed their crops in ``embedding`` (so the next
        batch's detection overlaps it). Returns jobs: (keys, faces lists, embeddings future)."""
        groups: dict[tuple, list] = {}
        for item in todo:
            img = item[2]
            # one batch = one array kind and shape: (H, W, 3) from PIL, (3, H, W) from nvJPEG
            groups.setdefault((isinstance(img, np.ndarray), tuple(img.shape)), []).append(item)
        jobs = []
        for items in groups.values():
            batch0 = ImageBatch([items[0][2]], self.device)
            step = max(1, min(self.batch_size, int(DETECT_BATCH_PIXELS // (batch0.height * batch0.width))))
            for s in range(0, len(items), step):
                chunk = items[s : s + step]
                batch = ImageBatch([img for _, _, img in chunk], self.device)
                faces_of, crops, crowded = self.detect_and_crop(
                    batch,
                    subject_only=subject_only,
                    crop=embedding is not None,
                    max_faces=max_faces,
                    keys=[key for _, key, _ in chunk],
                )
                for j, ((i, _, _), faces) in enumerate(zip(chunk, faces_of)):
                    results[i].faces = faces
                    if j in crowded:
                        results[i].error = _crowded(results[i].sample.id, crowded[j], max_faces)
                future = embedding.submit(self._embed, crops) if crops is not None else None
                # an image over max_faces is not cached: another caller may allow more faces
                keys = [None if j in crowded else key for j, (_, key, _) in enumerate(chunk)]
                jobs.append((keys, faces_of, future))
        return jobs

    def detect_and_crop(
        self,
        batch: ImageBatch,
        *,
        subject_only: bool = False,
        crop: bool = True,
        max_faces: int | None = None,
        keys: list | None = None,
    ):
        """Detect every face of a batch, order each image's faces (subject first), and cut their
        crops: (faces per image, crops for all of them in that order or None when there is none
        or ``crop`` is False, {image index: faces found} for images over ``max_faces``, which
        get no faces and no crops). ``keys`` (the images' content keys) lets the detection
        cache answer for images it has seen."""
        found = self._detect(batch, keys)
        crowded = {j: len(d) for j, d in enumerate(found) if max_faces is not None and len(d) > max_faces}
        faces_of = [
            [] if j in crowded else faces_from(dets, batch.width, batch.height, subject_only=subject_only)
            for j, dets in enumerate(found)
        ]
        to_crop = [(j, f.detection) for j, faces in enumerate(faces_of) for f in faces]
        crops = self.cropper.crop(batch, to_crop) if crop and to_crop else None
        return faces_of, crops, crowded

    def _finish(self, jobs, results, cache: FaceCache | None) -> None:
        for keys, faces_of, future in jobs:
            if future is not None:
                emb, pos = future.result(), 0
                for faces in faces_of:
                    for f in faces:
                        f.embedding = emb[pos]
                        pos += 1
            if cache is not None:  # every face of these images has its embedding now
                for key, faces in zip(keys, faces_of):
                    if key is not None:
                        cache.put(key, [_copy(f) for f in faces])

    def _embed(self, crops) -> np.ndarray:
        """Crops -> float32 (M, d) unit vectors; the mirror image's embedding averaged in when
        ``flip`` is configured (part by part when fused). Crops are uint8 (M, S, S, 3) host
        arrays, or float (M, 3, S, S) 0..255 as the margin cropper cuts them: a NumPy array on
        the CPU, a tensor on a GPU (for a fused embedder: a list with each part's)."""
        parts = getattr(self.embedder, "parts", None)
        if parts is not None:
            return self.embedder.combine([self._embed_with(e, c) for e, c in zip(parts, crops)])
        return self._embed_with(self.embedder, crops)

    def _embed_with(self, embedder: Embedder, crops) -> np.ndarray:
        if isinstance(crops, np.ndarray) and crops.dtype != np.uint8:
            run = planar_embedding(embedder)
            emb = run(crops)
            if self.config.flip:  # mirrored: the planes' last axis is the crop's width
                emb = l2_normalize(emb + run(np.ascontiguousarray(crops[..., ::-1])))
            return emb
        if isinstance(crops, np.ndarray) or not hasattr(embedder, "embed_tensor"):
            host = _to_uint8(crops)
            emb = embedder.embed(host)
            if self.config.flip:
                emb = l2_normalize(emb + embedder.embed(np.ascontiguousarray(host[:, :, ::-1])))
            return emb
        import torch.nn.functional as F

        emb = embedder.embed_tensor(crops)
        if self.config.flip:
            emb = F.normalize(emb.float() + embedder.embed_tensor(crops.flip(3)).float(), dim=1)
        return emb.float().cpu().numpy()


def planar_embedding(embedder: Embedder):
    """A function of float32 (M, 3, S, S) NumPy crops, 0..255, giving float32 (M, d) unit rows: the
    embedder's ``embed_tensor`` where it has one (a NumPy array in, a NumPy array out, no torch:
    the float crops as cut, as on a GPU, so FaceNet's numbers do not depend on the device); else
    its ``embed`` of the crops rounded to uint8 (an embedder of uint8 crops sees nothing else)."""
    if hasattr(embedder, "embed_tensor"):
        return lambda x: np.asarray(embedder.embed_tensor(x), np.float32)
    return lambda x: embedder.embed(_to_uint8(x))


def _precision(embedder) -> str:
    """The precision an embedder runs in (a fused one's parts, joined by '+')."""
    parts = getattr(embedder, "parts", None)
    if parts is not None:
        names = [_precision(p) for p in parts]
        return "fp32" if set(names) == {"fp32"} else "+".join(names)
    return getattr(embedder, "precision", "fp32")


def faces_from(detections: list[Detection], width: int, height: int, *, subject_only: bool = False) -> list[Face]:
    """A detector's faces as results, most prominent first (the first is the subject)."""
    ordered = by_prominence(detections, width, height)[: 1 if subject_only else None]
    return [
        Face(
            d.box,
            d.score,
            None if d.landmarks is None else np.asarray(d.landmarks, np.float32),
            None,
            r == 0,
            d.full_box,
        )
        for r, d in enumerate(ordered)
    ]


def _copy(face: Face) -> Face:
    """A face whose arrays are its own: a caller changing a result never changes the cache."""
    copy = lambda a: None if a is None else a.copy()  # noqa: E731
    return Face(face.box, face.score, copy(face.landmarks), copy(face.embedding), face.is_subject, face.full_box)


def _crowded(sample_id: str, n: int, max_faces: int) -> str:
    return f"{sample_id}: {n} faces, over the limit of {max_faces} per image"


def as_sample(x, i: int) -> Sample:
    if isinstance(x, Sample):
        return x
    if isinstance(x, np.ndarray):
        return Sample(f"<array {i}>", x)
    if isinstance(x, (bytes, bytearray, memoryview)):
        return Sample(f"<bytes {i}>", bytes(x))
    if isinstance(x, (str, os.PathLike)):
        return Sample(str(x), str(x))
    if _is_pil_image(x):
        return Sample(f"<image {i}>", pil_to_array(x))
    raise InputError(f"expected an image path, bytes, a PIL image or a uint8 (H, W, 3) array, got {type(x).__name__}")


def _is_pil_image(x) -> bool:
    from PIL import Image

    return isinstance(x, Image.Image)


def pil_to_array(image) -> np.ndarray:
    """A PIL image as the pipeline reads a file: turned as its EXIF orientation says, RGB uint8."""
    from PIL import ImageOps

    return np.asarray(ImageOps.exif_transpose(image).convert("RGB"))


def _one(results: list[ImageResult]) -> list[Face]:
    r = results[0]
    if r.error:
        raise ImageError(r.error)
    return r.faces
