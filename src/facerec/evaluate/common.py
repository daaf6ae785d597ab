"""Shared evaluation plumbing: embed a list of images once, with an explicit no-face policy."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facerec.datasets import Sample
from facerec.paths import atomic_write_bytes
from facerec.pipeline import Pipeline


@dataclass
class Embedded:
    """Embeddings of ``paths`` (most prominent face), float32 (n, d); ``fallback`` marks images where
    no face was detected and the central crop was embedded instead (reported, never hidden)."""

    embeddings: np.ndarray
    fallback: np.ndarray
    errors: list[str]


def run_all(pipe: Pipeline, samples: list[Sample], *, quiet: bool = True) -> list:
    """Every sample's subject face through ``pipe`` (a labelled image stands for its subject)."""
    return pipe.run(samples, subject_only=True, quiet=quiet, desc="evaluate")


def embed_paths(pipe: Pipeline, paths: list[str], *, quiet: bool = True, center_fallback: bool = True) -> Embedded:
    return embed_samples(pipe, [Sample(p, p) for p in paths], quiet=quiet, center_fallback=center_fallback)


def embed_samples(pipe: Pipeline, samples: list[Sample], *, quiet: bool = True, center_fallback: bool = True):
    """As :func:`embed_paths`, for samples (paths or arrays, a dataset's)."""
    results = run_all(pipe, samples, quiet=quiet)
    emb = np.zeros((len(samples), pipe.config.dim), np.float32)
    fallback = np.zeros(len(samples), bool)
    errors = [r.error for r in results if r.error]
    missing = []
    for i, r in enumerate(results):
        if r.faces:
            emb[i] = r.faces[0].embedding
        elif r.error is None:
            missing.append(i)
    if missing and center_fallback:
        crops = [_central_face(pipe, results[i].sample) for i in missing]
        fused = isinstance(crops[0], list)  # one crop per part of a fused embedder
        emb[missing] = pipe.embed_crops([np.stack(c) for c in zip(*crops)] if fused else np.stack(crops))
        fallback[missing] = True
    return Embedded(emb, fallback, errors)


def _central_face(pipe: Pipeline, sample: Sample) -> np.ndarray:
    """The crop for an LFW image in which no face was detected. LFW images are centred on the face:
    FaceNet gets what MTCNN's box plus margin frames around LFW's face (the central 64%); dlib gets
    its own landmark chip from a box where dlib's HOG detector typically finds LFW's face (its
    median box), as dlib's own LFW test does."""
    _, raw = sample.read()
    img = sample.decode(raw, pipe.max_pixels)
    h, w = img.shape[:2]
    if pipe.embedder.spec.crop == "arcface":  # no box fallback in the pipeline: this one is LFW's
        from facerec.align.arcface import central_crop

        return central_crop(img, pipe.embedder.spec.input_size)
    if pipe.embedder.spec.crop == "dlib-chip":
        box = (w * 0.27, h * 0.32, w * 0.70, h * 0.75)
    else:  # the margin crop of this box is the central 64% (margin px of the crop on each side)
        frac = 0.64 * (1 - pipe.config.margin / pipe.config.image_size)
        box = (w * (1 - frac) / 2, h * (1 - frac) / 2, w * (1 + frac) / 2, h * (1 + frac) / 2)
    return pipe.crop_for(img, box)


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
