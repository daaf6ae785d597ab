"""Two detectors, one face: average the embeddings of the crops that each detector's box gives.

``--align mtcnn+dlib``: every face MTCNN finds is also aligned from the box dlib's HOG detector
draws around it, when HOG finds it too, and the face's embedding is the mean of the two. The
boxes frame a face differently (HOG's is tighter, so dlib's landmark model lands differently),
and an embedder's errors on the two crops partly cancel: see the README's LFW results. The first
detector stays the one of record: its faces, boxes and order; a face only the second detector
finds is not added. Each detector's pipeline keeps its own caches, so the two views cost what the
two alignments cost separately, once.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from .align import box_iou
from .cache import CachedFace
from .datasets import Sample
from .embed.base import l2_normalize
from .pipeline import FacePipeline, ImageResult

#: Boxes of the same face from MTCNN and HOG overlap by IoU 0.5-0.8 on LFW (HOG's box is the inner
#: face); below this they are different faces.
SAME_FACE_IOU = 0.3


class TwoViewPipeline:
    """Runs ``first`` and ``second`` (same embedder, different aligners) and fuses their faces."""

    def __init__(self, first: FacePipeline, second: FacePipeline):
        if first.config.embedder != second.config.embedder:
            raise ValueError("both views must use the same embedder")
        self.first, self.second = first, second
        self.config = replace(first.config, aligner=f"{first.config.aligner}+{second.config.aligner}")
        self.embedder, self.max_pixels = first.embedder, first.max_pixels

    def run(self, samples: list[Sample], *, quiet: bool = False, desc: str = "embedding") -> list[ImageResult]:
        """As :meth:`FacePipeline.run`: the first detector's faces, each embedding averaged with the
        second view of the same face where there is one."""
        primary = self.first.run(samples, quiet=quiet, desc=f"{desc} ({self.first.config.aligner})")
        other = self.second.run(samples, quiet=quiet, desc=f"{desc} ({self.second.config.aligner})")
        return [ImageResult(a.sample, fuse_views(a.faces, b.faces), a.error) for a, b in zip(primary, other)]

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """Crops that no detector framed (evaluation's no-face fallback) have one view only."""
        return self.first.embed_crops(crops)

    def limit_caches(self, entries: int) -> None:
        self.first.limit_caches(entries)
        self.second.limit_caches(entries)


def fuse_views(faces: list[CachedFace], others: list[CachedFace]) -> list[CachedFace]:
    """Each face of ``faces`` with its embedding averaged with that of its face in ``others``:
    pairs are matched one to one, most-overlapping first (IoU >= :data:`SAME_FACE_IOU`), so two
    nearby faces never share one view; unmatched faces keep their own embedding."""
    overlaps = sorted(((box_iou(f.box, o.box), i, j) for i, f in enumerate(faces) for j, o in enumerate(others)),
                      reverse=True)
    match: dict[int, int] = {}
    for iou, i, j in overlaps:
        if iou < SAME_FACE_IOU:
            break
        if i not in match and j not in match.values():
            match[i] = j
    out = list(faces)
    for i, j in match.items():
        f = faces[i]
        emb = l2_normalize((f.embedding + others[j].embedding)[None])[0].astype(np.float32)
        out[i] = CachedFace(f.box, f.score, emb, f.landmarks)
    return out
