"""The throughput path: image files -> subject face -> embedding, for archives and benchmarks.

Decoding (CPU worker threads, or nvJPEG on a GPU), detection (:class:`BatchedMTCNN`, every step a
tensor operation) and embedding (bf16/fp16 channels-last when asked) overlap: while the device
works on one batch, the workers decode the next. Images stay on the device from decode to
embedding. Same weights and geometry as :class:`facerec.pipeline.FacePipeline` with ``mtcnn``.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .align.mtcnn_batched import BatchedMTCNN
from .cache import CachedFace
from .datasets import Sample
from .embed import create_embedder
from .embed.base import resolve_device
from .errors import FacerecError, InputError
from .images import DEFAULT_MAX_PIXELS, check_rgb_array, load_image
from .jpeg_header import read_jpeg_header
from .pipeline import ImageResult, PipelineConfig
from .progress import progress

BATCH_PIXELS = 64e6  # pixels per detection batch: bounds device memory when photos are large
# reading threads feeding nvJPEG: more contend for the GIL with the thread that launches detection's
# kernels (H200, 13,233 LFW images end to end: 3,052 img/s with 6, 2,420 with 16)
GPU_DECODE_THREADS = 6


@dataclass
class BatchResult:
    """``embeddings`` float32 (n, d) of each path's most prominent face (rows of zeros where
    ``found`` is False); ``boxes`` float32 (n, 4); ``errors`` maps a path to why it was skipped."""

    paths: list[str]
    embeddings: np.ndarray
    found: np.ndarray
    boxes: np.ndarray
    errors: dict[str, str] = field(default_factory=dict)


class BatchPipeline:
    """Embed many image files fast.

    Args:
        embedder: a PyTorch embedder's name (``facenet-casia`` or ``facenet-vggface2``), or one
            already built (then ``weights``, ``precision`` and ``compile`` are its own).
        precision: ``fp32``, ``bf16`` or ``fp16`` for the embedding network.
        decoder: ``pil`` (worker threads), ``nvjpeg`` (GPU; other files fall back to PIL) or
            ``auto`` (nvjpeg on CUDA, else pil).
        batch_size: images per detection batch; workers: decoding threads (default: 6 on CUDA,
            see ``GPU_DECODE_THREADS``; 4 on a CPU).
        flip: average each face's embedding with its mirror image's (as ``FacePipeline``).
    """

    def __init__(
        self,
        *,
        embedder="facenet-casia",
        weights: str | None = None,
        device: str = "auto",
        precision: str = "fp32",
        compile: bool = False,
        batch_size: int = 128,
        margin: float = 32,
        workers: int | None = None,
        decoder: str = "auto",
        max_pixels: int = DEFAULT_MAX_PIXELS,
        flip: bool = False,
    ):
        self.device = resolve_device(device)
        gpu = self.device.startswith("cuda")
        if decoder == "auto":
            decoder = "nvjpeg" if gpu else "pil"
        if workers is None:
            workers = min(GPU_DECODE_THREADS, os.cpu_count() or GPU_DECODE_THREADS) if gpu else 4
        if decoder not in ("pil", "nvjpeg"):
            raise InputError(f"decoder must be pil or nvjpeg, got {decoder!r}")
        if decoder == "nvjpeg" and not self.device.startswith("cuda"):
            raise InputError("the nvjpeg decoder needs a CUDA device")
        self.embedder = (
            embedder
            if not isinstance(embedder, str)
            else create_embedder(embedder, weights=weights, device=self.device, precision=precision, compile=compile)
        )
        if not hasattr(self.embedder, "embed_tensor"):
            raise InputError(f"{embedder} has no on-device path; use FacePipeline (facerec train/infer) for it")
        self.detector = BatchedMTCNN(device=self.device, batch_size=batch_size)
        self.batch_size, self.margin, self.workers = batch_size, margin, workers
        self.decoder, self.max_pixels, self.flip = decoder, max_pixels, bool(flip)
        self._decode_stream = None  # nvJPEG's CUDA stream, made on first use
        spec = self.embedder.spec
        weights_id = spec.weights_id if not weights else f"{spec.weights_id}:{Path(weights).name}"
        # embeddings interchangeable with FacePipeline's mtcnn ones: models record the same pipeline
        self.config = PipelineConfig(
            spec.name, weights_id, "mtcnn", spec.input_size, float(margin), spec.dim, self.flip
        )

    # -- stages, usable alone (the benchmark times each) ------------------------------------------
    def decode(self, paths: list, pool: ThreadPoolExecutor, decoder: str | None = None) -> list:
        """Decoded images, uint8 (H, W, 3) numpy (pil) or (3, H, W) CUDA tensors (nvjpeg);
        an :class:`FacerecError` in place of a file that failed. ``paths`` may hold uint8 (H, W, 3)
        arrays too (an ``.npz`` dataset), checked, not decoded. ``decoder`` overrides the pipeline's."""
        if (decoder or self.decoder) == "nvjpeg":
            return self._decode_nvjpeg(paths, pool)
        return list(pool.map(self._load, paths))

    def _load(self, path):
        try:
            if isinstance(path, np.ndarray):
                return check_rgb_array(path, label="in-memory image")
            return load_image(path, max_pixels=self.max_pixels)
        except FacerecError as exc:
            return exc

    def _decode_nvjpeg(self, paths, pool):
        import torch
        from torchvision.io import ImageReadMode, decode_jpeg

        raw = list(pool.map(self._read_for_nvjpeg, paths))
        out: list = [None] * len(paths)
        jpeg = [i for i, r in enumerate(raw) if r is not None]
        if jpeg:
            if self._decode_stream is None:
                self._decode_stream = torch.cuda.Stream(device=self.device)
            try:
                # on a stream of its own: the next batch decodes while this one is detected
                with torch.cuda.stream(self._decode_stream):
                    images = decode_jpeg([raw[i] for i in jpeg], mode=ImageReadMode.RGB, device=self.device)
                self._decode_stream.synchronize()
                for i, img in zip(jpeg, images):
                    out[i] = img
            except RuntimeError:  # one bad JPEG fails the batch: every file goes to the CPU path below
                pass
        rest = [i for i in range(len(paths)) if out[i] is None]
        for i, img in zip(rest, pool.map(self._load, [paths[i] for i in rest])):
            out[i] = img
        return out

    def _read_for_nvjpeg(self, path):
        """The file's bytes as a uint8 tensor when nvJPEG can decode the picture the CPU path would,
        else None (the CPU path then decodes it, or names the problem): a complete 8-bit sequential
        grey or 3-channel JPEG, upright (nvJPEG ignores EXIF rotation), within the pixel limit.
        Only the markers are read. The pixels may differ from libjpeg-turbo's by a grey level or so
        (another IDCT and chroma upsampling): LFW pairs accuracy on fold 1 was the same either way."""
        import torch

        if not isinstance(path, str):
            return None
        try:
            data = Path(path).read_bytes()
        except OSError:  # missing, unreadable, a folder: the CPU path names the problem
            return None
        head = read_jpeg_header(data)
        if (
            head is None
            or not head.sequential
            or head.bits != 8
            or not head.complete
            or head.components not in (1, 3)
            or head.width * head.height > self.max_pixels
            or (head.metadata and not _upright(data))
        ):
            return None
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)

    def embed_images(self, images: list, embed_pool: ThreadPoolExecutor | None = None):
        """Detect, crop and embed decoded images. Returns embeddings (n, d), found (n,), boxes (n, 4)."""
        return self._collect(len(images), self._start(images, embed_pool))[:3]

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """uint8 (n, S, S, 3) crops -> float32 (n, d) unit vectors (flip-averaged when configured)."""
        import torch

        t = torch.from_numpy(np.ascontiguousarray(crops)).to(self.device).permute(0, 3, 1, 2).float()
        return self._embed(t).cpu().numpy()

    def _embed(self, crops):
        """Crops float (n, 3, S, S) on the device -> unit embeddings on the device."""
        import torch.nn.functional as F

        emb = self.embedder.embed_tensor(crops)
        if self.flip:
            emb = F.normalize(emb.float() + self.embedder.embed_tensor(crops.flip(3)).float(), dim=1)
        return emb

    def _start(self, images: list, embed_pool: ThreadPoolExecutor | None) -> list:
        """Detect and crop every image now; embed each batch of crops now, or in ``embed_pool`` so
        that the next batch's detection overlaps it. Returns (rows, boxes, embeddings or future)."""
        groups: dict[tuple, list[int]] = {}
        for i, img in enumerate(images):
            if not isinstance(img, Exception):
                # one batch = one array kind and shape: (H, W, 3) from PIL, (3, H, W) from nvJPEG
                groups.setdefault((isinstance(img, np.ndarray), tuple(img.shape)), []).append(i)
        jobs = []
        for (host, shape), idx in groups.items():
            h, w = shape[:2] if host else shape[-2:]
            step = max(1, min(self.batch_size, int(BATCH_PIXELS // (h * w))))  # big photos: fewer per batch
            for s in range(0, len(idx), step):
                chunk = idx[s : s + step]
                boxes, scores, owner, crops = self.detect_subjects(self._stack([images[i] for i in chunk]))
                if len(owner) == 0:
                    continue
                rows = np.array(chunk)[owner.cpu().numpy()]
                vec = embed_pool.submit(self._embed, crops) if embed_pool else self._embed(crops)
                jobs.append((rows, boxes.cpu().numpy(), scores.cpu().numpy(), vec))
        return jobs

    def detect_subjects(self, batch):
        """Each image's most prominent face in a stacked float (N, 3, H, W) batch on the device:
        its box, score and image index, and its crop for the embedder (float (k, 3, S, S))."""
        boxes, scores, _, owner = self.detector.detect_tensor(batch)
        pick = _subject(boxes, owner, len(batch), batch.shape[3], batch.shape[2])
        boxes, scores, owner = boxes[pick], scores[pick], owner[pick]
        if len(pick) == 0:
            return (
                boxes,
                scores,
                owner,
                batch.new_zeros((0, 3, self.embedder.spec.input_size, self.embedder.spec.input_size)),
            )
        return boxes, scores, owner, self.detector.crop(batch, boxes, owner, self.embedder.spec.input_size, self.margin)

    def _collect(self, n: int, jobs: list):
        emb = np.zeros((n, self.embedder.spec.dim), np.float32)
        found = np.zeros(n, bool)
        boxes = np.zeros((n, 4), np.float32)
        scores = np.zeros(n, np.float32)
        for rows, bx, sc, vec in jobs:
            emb[rows] = (vec.result() if hasattr(vec, "result") else vec).cpu().numpy()
            boxes[rows], scores[rows], found[rows] = bx, sc, True
        return emb, found, boxes, scores

    def _stack(self, images):
        import torch

        if isinstance(images[0], np.ndarray):  # (N, H, W, 3) uint8 -> (N, 3, H, W) float on the device
            return torch.from_numpy(np.stack(images)).to(self.device, non_blocking=True).permute(0, 3, 1, 2).float()
        if images[0].is_cuda and self._decode_stream is not None:
            for img in images:  # decoded on the side stream, read on this one: keep the memory until then
                img.record_stream(torch.cuda.current_stream())
        return torch.stack(images).float()

    # -- all together -----------------------------------------------------------------------------
    def run(self, paths: list[str]) -> BatchResult:
        """Embed every path: workers decode batch i+1 while batch i is detected, and batch i's crops
        are embedded while batch i+1 is detected (on a CPU the two stages then share the cores)."""
        paths = [str(p) for p in paths]
        emb, found, boxes, _, errors = self._run(paths)
        return BatchResult(paths, emb, found, boxes, {paths[i]: e for i, e in errors.items()})

    def run_samples(self, samples: list[Sample], *, quiet: bool = True, desc: str = "") -> list[ImageResult]:
        """As :meth:`FacePipeline.run` (``train --fast``): each sample's most prominent face, or the
        error that stopped it. Nothing is cached: this path is for embedding everything once, fast."""
        emb, found, boxes, scores, errors = self._run([s.source for s in samples], quiet=quiet, desc=desc)

        def error(i, s):  # a file's error names the file; an array's gets its sample id
            e = errors.get(i)
            return f"{s.id}: {e}" if e and isinstance(s.source, np.ndarray) else e

        return [
            ImageResult(
                s,
                [CachedFace(tuple(float(v) for v in boxes[i]), float(scores[i]), emb[i])] if found[i] else [],
                error(i, s),
            )
            for i, s in enumerate(samples)
        ]

    def _run(self, paths: list, *, quiet: bool = True, desc: str = ""):
        chunks = [paths[s : s + self.batch_size] for s in range(0, len(paths), self.batch_size)]
        parts, errors = [], {}
        with (
            ThreadPoolExecutor(self.workers) as pool,
            ThreadPoolExecutor(1) as ahead,
            ThreadPoolExecutor(1) as embedding,
            progress(total=len(paths), desc=desc, quiet=quiet) as bar,
        ):
            pending = ahead.submit(self.decode, chunks[0], pool) if chunks else None
            for c in range(len(chunks)):
                images = pending.result()
                if c + 1 < len(chunks):
                    pending = ahead.submit(self.decode, chunks[c + 1], pool)
                for j, img in enumerate(images):
                    if isinstance(img, Exception):
                        errors[c * self.batch_size + j] = str(img)
                parts.append((len(images), self._start(images, embedding)))
                bar.update(len(images))
                if len(parts) > 2:  # at most two batches of crops wait for the embedder: memory stays bounded
                    for *_, vec in parts[-3][1]:
                        if hasattr(vec, "result"):
                            vec.result()
            parts = [self._collect(n, jobs) for n, jobs in parts]
        if not parts:
            dim = self.embedder.spec.dim
            return np.zeros((0, dim), np.float32), np.zeros(0, bool), np.zeros((0, 4), np.float32), np.zeros(0), {}
        emb, found, boxes, scores = (np.concatenate(x) for x in zip(*parts))
        return emb, found, boxes, scores, errors


def _upright(data: bytes) -> bool:
    """Whether a JPEG with an APP1 segment (Exif or XMP) has no rotation to apply (PIL reads it; rare files)."""
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.getexif().get(0x0112, 1) == 1
    except Exception:
        return False


def _subject(boxes, owner, n_images: int, width: int, height: int):
    """Index of each image's most prominent face (area - 2 * centre offset^2, as FacePipeline's
    ``by_prominence``), for images that have one: int64 (k,) into ``boxes``."""
    import torch

    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    x1, y1, x2, y2 = boxes.unbind(1)
    dx, dy = (x1 + x2 - width) / 2, (y1 + y2 - height) / 2
    score = (x2 - x1) * (y2 - y1) - 2.0 * (dx * dx + dy * dy)
    best = torch.full((n_images,), -float("inf"), device=boxes.device).scatter_reduce(0, owner, score, "amax")
    winners = (score == best[owner]).nonzero().squeeze(1)
    # one face per image even on an exact tie: the first winner of each image
    first = torch.full((n_images,), len(boxes), device=boxes.device, dtype=torch.long).scatter_reduce(
        0, owner[winners], winners, "amin"
    )
    return first[first < len(boxes)]
