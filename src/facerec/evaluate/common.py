"""Shared evaluation plumbing: embed a list of images once, with an explicit no-face policy."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..align import resize_rgb
from ..datasets import Sample
from ..paths import atomic_write_bytes
from ..pipeline import FacePipeline


@dataclass
class Embedded:
    """Embeddings of ``paths`` (most prominent face), float32 (n, d); ``fallback`` marks images where
    no face was detected and the central crop was embedded instead (reported, never hidden)."""

    embeddings: np.ndarray
    fallback: np.ndarray
    errors: list[str]


def run_all(pipe, samples: list[Sample], *, quiet: bool = True) -> list:
    """Every sample through ``pipe``: a :class:`FacePipeline`, or the fast path (``--fast``)."""
    if hasattr(pipe, "run_samples"):
        return pipe.run_samples(samples, quiet=quiet, desc="evaluate")
    return pipe.run(samples, quiet=quiet, desc="evaluate")


def embed_paths(pipe: FacePipeline, paths: list[str], *, quiet: bool = True, center_fallback: bool = True) -> Embedded:
    results = run_all(pipe, [Sample(p, p) for p in paths], quiet=quiet)
    emb = np.zeros((len(paths), pipe.config.dim), np.float32)
    fallback = np.zeros(len(paths), bool)
    errors = [r.error for r in results if r.error]
    missing = []
    for i, r in enumerate(results):
        if r.faces:
            emb[i] = r.faces[0].embedding
        elif r.error is None:
            missing.append(i)
    if missing and center_fallback:
        emb[missing] = pipe.embed_crops(np.stack([_central_face(pipe, results[i].sample) for i in missing]))
        fallback[missing] = True
    return Embedded(emb, fallback, errors)


def _central_face(pipe, sample: Sample) -> np.ndarray:
    """The crop for an LFW image in which no face was detected. LFW images are centred on the face:
    FaceNet gets the central 64% (what MTCNN's box plus margin frames); dlib gets its own landmark
    chip from a box where dlib's HOG detector typically finds LFW's face (its median box), as
    dlib's own LFW test does."""
    _, raw = sample.read()
    img = sample.decode(raw, pipe.max_pixels)
    h, w = img.shape[:2]
    if pipe.embedder.spec.crop == "dlib-chip" and hasattr(pipe.aligner, "crop"):
        from ..align import Detection

        return pipe.aligner.crop(img, [Detection((w * 0.27, h * 0.32, w * 0.70, h * 0.75), 0.0)])[0].crop
    return resize_rgb(
        np.ascontiguousarray(img[int(h * 0.18) : int(h * 0.82), int(w * 0.18) : int(w * 0.82)]), pipe.config.image_size
    )


def write_json(path: str | os.PathLike, data: dict) -> None:
    atomic_write_bytes(Path(path), (json.dumps(data, indent=2) + "\n").encode())


def save_figure(fig, path: str | os.PathLike) -> None:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(Path(path), buf.getvalue())


def pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt
