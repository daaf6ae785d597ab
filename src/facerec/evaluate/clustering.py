"""``facerec evaluate cluster``: how well faces are grouped into people on a labelled collection
(folder per person: LFW), against the baselines photo tools ship, measured in the same run.

Baselines:
- ``immich-dbscan``: DBSCAN with Immich's documented defaults (max cosine distance 0.5, min faces 3).
- ``dlib-chinese-whispers``: dlib's own ``chinese_whispers_clustering`` at face_recognition's usual
  0.5 for the dlib embedder, else at the embedder's documented threshold.

Each image stands for its subject (its most prominent face), as in every LFW protocol; an image in
which no face is found is embedded from its central crop and counted (never dropped). The quality
gate is not applied: every labelled face is scored.
"""

from __future__ import annotations

import time

import numpy as np

from facerec.people.algorithms import ALGORITHMS, cluster, relabel
from facerec.people.metrics import scores

IMMICH_MAX_COSINE, IMMICH_MIN_FACES = 0.5, 3
FACE_RECOGNITION_DLIB_THRESHOLD = 0.5


def immich_dbscan(emb: np.ndarray) -> np.ndarray:
    from sklearn.cluster import DBSCAN

    labels = DBSCAN(eps=IMMICH_MAX_COSINE, min_samples=IMMICH_MIN_FACES, metric="cosine").fit_predict(emb)
    return relabel(labels, IMMICH_MIN_FACES)


def dlib_chinese_whispers(emb: np.ndarray, threshold: float, min_faces: int) -> np.ndarray:
    import dlib

    labels = dlib.chinese_whispers_clustering([dlib.vector(v.astype(np.float64).tolist()) for v in emb], threshold)
    return relabel(np.asarray(labels, np.int64), min_faces)


def evaluate_clustering(
    emb: np.ndarray,
    labels: np.ndarray,
    *,
    threshold: float,
    algorithm: str,
    min_faces: int,
    embedder: str,
    default_threshold: float,
    tried: tuple[str, ...] = ALGORITHMS,
) -> dict:
    """The contract of ``facerec evaluate cluster --json`` (see the README): the chosen
    algorithm's scores at the top, ``baselines``, every algorithm ``tried`` at the same threshold,
    and the same on the people with at least two images (``people_2plus``)."""
    timed = {}

    def run(name, fn, e, y):
        t0 = time.perf_counter()
        pred = fn(e)
        timed[name] = round(time.perf_counter() - t0, 2)
        return scores(y, pred) | {"seconds": timed[name]}

    def everything(e, y):
        out = run(algorithm, lambda x: cluster(x, threshold, algorithm=algorithm, min_faces=min_faces), e, y)
        cw_thr = FACE_RECOGNITION_DLIB_THRESHOLD if embedder == "dlib" else (default_threshold or threshold)
        out["baselines"] = {
            "immich-dbscan": _short(run("immich-dbscan", immich_dbscan, e, y)),
            "dlib-chinese-whispers": _short(
                run("dlib-chinese-whispers", lambda x: dlib_chinese_whispers(x, cw_thr, min_faces), e, y)
            )
            | {"threshold": cw_thr},
        }
        out["tried"] = {
            a: _short(run(a, lambda x, a=a: cluster(x, threshold, algorithm=a, min_faces=min_faces), e, y))
            for a in tried
            if a != algorithm
        }
        return out

    emb = np.asarray(emb, np.float32)
    labels = np.asarray(labels)
    result = everything(emb, labels)
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    keep = counts[inverse] >= 2
    result["people_2plus"] = everything(emb[keep], labels[keep])
    result.update(algorithm=algorithm, threshold=threshold, min_faces=min_faces)
    return result


def _short(s: dict) -> dict:
    return {k: s[k] for k in ("clusters", "ungrouped", "pairwise", "bcubed", "seconds")}
