"""Fused embedders, ``A+B``: each part embeds its own crop of the face, and the vectors (each of
unit length) are weighted and concatenated into one, so that every gallery, index, calibration
and store takes the result unchanged.

Part i is scaled by sqrt(w_i) with the weights summing to 1, so the fused vector is a unit vector
too and its squared Euclidean distance is the weighted sum of the parts' squared distances
(its cosine similarity the weighted sum of theirs): the scores combined once at embedding
time. Two networks trained on different data (FaceNet on CASIA-WebFace, dlib's ResNet on its own
3 million faces) err on different pairs, which is what a fused embedder gains from.

Weights come from :data:`FUSED_WEIGHTS` (measured on LFW's training folds only, see
``bench/fused.py``), or are equal for a pair never measured. ``A*0.3+B`` names a weight
explicitly (the others share what is left).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facerec.embed.base import Embedder, EmbedderSpec
from facerec.errors import InputError

# (part, part) -> weights, measured by `python bench/fused.py` (the weight each of LFW View 2's
# folds chooses on its nine training folds; the median of the ten). FaceNet's small weight is
# mostly scale: its d^2 spreads ~7x wider than dlib's (bench/reported/fused_casia_dlib_yunet.json:
# YuNet, five-point, flip; 99.22% +- 0.35 against dlib's 99.12% alone).
FUSED_WEIGHTS: dict[tuple[str, ...], tuple[float, ...]] = {("facenet-casia", "dlib"): (0.045, 0.955)}


@dataclass(frozen=True)
class Part:
    name: str
    weight: float


def parse_parts(name: str) -> list[Part]:
    """``A+B`` or ``A*0.3+B`` -> the parts with their weights (summing to 1)."""
    raw = [p.strip() for p in name.split("+")]
    if len(raw) < 2 or any(not p for p in raw):
        raise InputError(f"a fused embedder is named A+B (two or more registered embedders), got {name!r}")
    names, given = [], []
    for p in raw:
        base, _, w = p.partition("*")
        names.append(base)
        if w:
            try:
                value = float(w)
            except ValueError:
                raise InputError(f"{name!r}: weight {w!r} is not a number") from None
            if not 0 < value < 1:
                raise InputError(f"{name!r}: a part's weight must lie between 0 and 1, got {value}")
            given.append(value)
        else:
            given.append(None)
    if len(set(names)) != len(names):
        raise InputError(f"{name!r}: a part appears twice")
    if all(g is None for g in given) and tuple(names) in FUSED_WEIGHTS:
        return [Part(n, w) for n, w in zip(names, FUSED_WEIGHTS[tuple(names)])]
    fixed = sum(g for g in given if g is not None)
    free = [i for i, g in enumerate(given) if g is None]
    if fixed >= 1 or (not free and not math.isclose(fixed, 1.0)):
        raise InputError(f"{name!r}: the weights must sum to 1, with room for the parts without one")
    rest = (1 - fixed) / len(free) if free else 0.0
    return [Part(n, g if g is not None else rest) for n, g in zip(names, given)]


def fused_spec(name: str, get_spec) -> EmbedderSpec:
    parts = parse_parts(name)
    specs = [get_spec(p.name) for p in parts]
    if any(s.parts for s in specs):
        raise InputError(f"{name!r}: a part is itself fused")
    weights_id = "+".join(f"{s.weights_id}*{p.weight:.4g}" for s, p in zip(specs, parts))
    return EmbedderSpec(
        name=name,
        dim=sum(s.dim for s in specs),
        input_size=specs[0].input_size,
        crop="fused",
        weights_id=weights_id,
        # d^2 = sum w_i d_i^2: the parts' default thresholds combine the same way
        default_threshold=math.sqrt(sum(p.weight * s.default_threshold**2 for s, p in zip(specs, parts))),
        description=" + ".join(f"{p.weight:.3g} x {p.name}" for p in parts) + " (fused)",
        speed_options=any(s.speed_options for s in specs),
        parts=tuple((p.name, p.weight) for p in parts),
    )


class FusedEmbedder(Embedder):
    """The parts, each with its weight; :class:`~facerec.pipeline.Pipeline` cuts each part's own
    crop and calls :meth:`combine` on their embeddings. :meth:`embed` takes the list of crops."""

    def __init__(self, spec: EmbedderSpec, parts: list[Embedder]):
        self.spec, self.parts = spec, parts
        self.weights = [w for _, w in spec.parts]
        self.device = parts[0].device if hasattr(parts[0], "device") else "cpu"

    def combine(self, vectors: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([math.sqrt(w) * np.asarray(v, np.float32) for w, v in zip(self.weights, vectors)], 1)

    def embed(self, crops) -> np.ndarray:
        if not isinstance(crops, (list, tuple)) or len(crops) != len(self.parts):
            raise InputError(f"{self.spec.name} takes one batch of crops per part ({len(self.parts)})")
        return self.combine([e.embed(c) for e, c in zip(self.parts, crops)])


def create_fused(spec: EmbedderSpec, *, weights: str | None, device: str, **options) -> FusedEmbedder:
    from facerec.embed.registry import create_embedder, get_spec

    if weights:
        raise InputError(f"{spec.name}: --weights names one network's file; a fused embedder takes its parts' own")
    parts = []
    for name, _ in spec.parts:
        mine = options if get_spec(name).speed_options else {}
        parts.append(create_embedder(name, device=device, **mine))
    return FusedEmbedder(spec, parts)


def compose(name: str, get_spec):
    """The registry's hook: ``A+B`` -> (spec, factory); None for a name without ``+``."""
    if "+" not in name:
        return None
    return fused_spec(name, get_spec), create_fused


def measured_names() -> list[str]:
    """The pairs whose weights were measured (any ``A+B`` works)."""
    return ["+".join(parts) for parts in FUSED_WEIGHTS]
