"""Images -> faces -> embeddings, batched, cached, and tolerant of bad files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .align import ALIGNERS, Aligner, Detection, create_aligner
from .cache import CachedFace, FaceCache
from .datasets import Sample
from .embed import Embedder, create_embedder, get_spec
from .embed.base import l2_normalize, resolve_device
from .errors import FacerecError, InputError
from .images import DEFAULT_MAX_PIXELS
from .progress import progress


@dataclass(frozen=True)
class PipelineConfig:
    """Everything that determines an embedding; stored in every model file."""

    embedder: str
    weights_id: str
    aligner: str
    image_size: int
    margin: float
    dim: int
    flip: bool = False  # test-time augmentation: mean of the crop's and its mirror's embeddings
    face_order: str = "prominence"  # which face is an image's subject (align.by_prominence)

    def cache_key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class ImageResult:
    """What one input produced: its faces (most prominent first), or the error that stopped it."""

    sample: Sample
    faces: list[CachedFace]
    error: str | None = None


class FacePipeline:
    """Aligner + embedder + cache. Build with :meth:`create`; nothing loads at import."""

    SAVE_EVERY = 2000  # images between cache checkpoints

    def __init__(
        self,
        config: PipelineConfig,
        aligner: Aligner,
        embedder: Embedder,
        cache: FaceCache | None = None,
        batch_size: int = 64,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        detection_cache: FaceCache | None = None,
    ):
        self.config, self.aligner, self.embedder = config, aligner, embedder
        self.cache = cache if cache is not None else FaceCache(None, config.dim)
        self.detections = detection_cache if detection_cache is not None else FaceCache(None, 0)
        self.batch_size, self.max_pixels = batch_size, max_pixels

    @classmethod
    def create(
        cls,
        *,
        embedder: str,
        align: str = "mtcnn",
        margin: float = 32,
        weights: str | None = None,
        device: str = "auto",
        art_dir: str | None = None,
        batch_size: int = 64,
        flip: bool = False,
        max_pixels: int = DEFAULT_MAX_PIXELS,
    ) -> FacePipeline:
        if batch_size < 1:
            raise InputError(f"--batch_size must be >= 1, got {batch_size}")
        if align not in ALIGNERS:
            raise InputError(f"unknown aligner {align!r}; choose one of: {', '.join(ALIGNERS)}")
        spec = get_spec(embedder)
        device = resolve_device(device)
        model = create_embedder(embedder, weights=weights, device=device)
        weights_id = spec.weights_id if not weights else f"{spec.weights_id}:{Path(weights).name}"
        config = PipelineConfig(embedder, weights_id, align, spec.input_size, float(margin), spec.dim, bool(flip))
        aligner = create_aligner(align, crop=spec.crop, size=spec.input_size, margin=margin, device=device)
        cache = FaceCache(
            Path(art_dir) / "cache" / f"faces_{embedder}_{align}_{config.cache_key()}.npz" if art_dir else None,
            spec.dim,
        )
        det_id = getattr(aligner, "detector_id", None)
        det_cache = None
        if art_dir and det_id:
            digest = hashlib.sha256(det_id.encode()).hexdigest()[:12]
            det_cache = FaceCache(Path(art_dir) / "cache" / f"detections_{align}_{digest}.npz", 0)
        return cls(config, aligner, model, cache, batch_size, max_pixels, det_cache)

    def run(self, samples: list[Sample], *, quiet: bool = False, desc: str = "embedding") -> list[ImageResult]:
        """Process every sample; bad images become results with ``error`` set, never exceptions."""
        results: list[ImageResult] = [ImageResult(s, []) for s in samples]
        pending: list[tuple[int, str, np.ndarray]] = []
        saved_at = 0
        with progress(total=len(samples), desc=desc, quiet=quiet) as bar:
            for i, sample in enumerate(samples):
                try:
                    key, raw = sample.read()
                    cached = self.cache.get(key)
                    if cached is not None:
                        results[i].faces = cached
                        bar.update(1)
                        continue
                    pending.append((i, key, sample.decode(raw, self.max_pixels)))
                except FacerecError as exc:
                    results[i].error = str(exc)
                    bar.update(1)
                if len(pending) >= self.batch_size:
                    self._flush(pending, results, bar)
                    if i + 1 - saved_at >= self.SAVE_EVERY:  # an interrupted long run keeps its work
                        self.cache.save()
                        self.detections.save()
                        saved_at = i + 1
            self._flush(pending, results, bar)
        self.cache.save()
        self.detections.save()
        return results

    def limit_caches(self, entries: int) -> None:
        """Bound the in-memory caches (a long-running server); files are unaffected."""
        self.cache.max_entries = self.detections.max_entries = entries

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """uint8 (n, S, S, 3) -> float32 (n, d) unit vectors, with flip averaging when configured."""
        emb = self.embedder.embed(crops)
        if self.config.flip:
            emb = l2_normalize(emb + self.embedder.embed(np.ascontiguousarray(crops[:, :, ::-1])))
        return emb

    def _align(self, items: list[tuple[str, np.ndarray]]):
        """Align, reusing cached detections (shared by every embedder) when the aligner detects."""
        if not hasattr(self.aligner, "detect"):
            return self.aligner.align([img for _, img in items])
        cached = [self.detections.get(key) for key, _ in items]
        todo = [i for i, c in enumerate(cached) if c is None]
        fresh = self.aligner.detect([items[i][1] for i in todo]) if todo else []
        for i, dets in zip(todo, fresh):
            self.detections.put(
                items[i][0],
                [
                    CachedFace(
                        d.box,
                        d.score,
                        np.zeros(0, np.float32),
                        None if d.landmarks is None else np.asarray(d.landmarks, np.float32),
                    )
                    for d in dets
                ],
            )
        out, fresh_iter = [], iter(fresh)
        for i, c in enumerate(cached):
            dets = [Detection(f.box, f.score, f.landmarks) for f in c] if c is not None else next(fresh_iter)
            out.append(self.aligner.crop(items[i][1], dets))
        return out

    def _flush(self, pending, results, bar) -> None:
        if not pending:
            return
        faces_per_image = self._align([(key, img) for _, key, img in pending])
        crops = [f.crop for faces in faces_per_image for f in faces]
        emb = self.embed_crops(np.stack(crops)) if crops else np.zeros((0, self.config.dim), np.float32)
        pos = 0
        for (i, key, _), faces in zip(pending, faces_per_image):
            cached = [CachedFace(f.box, f.score, emb[pos + j]) for j, f in enumerate(faces)]
            pos += len(faces)
            results[i].faces = cached
            self.cache.put(key, cached)
        bar.update(len(pending))
        pending.clear()
