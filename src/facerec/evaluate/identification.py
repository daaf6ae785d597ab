"""Closed-set (stratified k-fold) and open-set (DIR at FPIR, NIST-style) identification."""

from __future__ import annotations

import numpy as np

from facerec.errors import DataError
from facerec.gallery import Gallery
from facerec.gallery.distance import pairwise_distances
from facerec.gallery.identify import identify


def _rank_people(dist: np.ndarray, labels: np.ndarray, n_people: int) -> np.ndarray:
    """For each query row, people ordered by their nearest sample (n, n_people), nearest first."""
    per_person = np.full((dist.shape[0], n_people), np.inf, np.float32)
    for p in np.unique(labels):
        per_person[:, p] = dist[:, labels == p].min(axis=1)
    return np.argsort(per_person, axis=1)


def closed_set(
    embeddings: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    *,
    folds: int = 5,
    k: int = 3,
    metric: str = "euclidean",
    seed: int = 0,
) -> dict:
    """Stratified k-fold: each fold's images are identified against a gallery of the others.
    People with fewer images than folds are left out (reported)."""
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels, minlength=len(names))
    keep = counts[labels] >= folds
    dropped = int(np.sum((counts > 0) & (counts < folds)))
    emb, lab = embeddings[keep], labels[keep]
    if len(np.unique(lab)) < 2:
        raise DataError(f"need at least 2 people with >= {folds} images for {folds}-fold identification")
    pred = np.full(len(lab), -1)
    top5 = np.zeros(len(lab), bool)
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(emb, lab):
        g = Gallery(k=k, metric=metric).fit(emb[train], lab[train], names, [str(i) for i in train])
        pred[test] = [p.label for p in identify(g, emb[test], topk=1)]
        ranked = _rank_people(pairwise_distances(emb[test], emb[train], metric), lab[train], len(names))
        top5[test] = (ranked[:, :5] == lab[test, None]).any(axis=1)
    people = np.unique(lab)
    per_person = [
        {"name": names[p], "images": int(np.sum(lab == p)), "top1": float(np.mean(pred[lab == p] == p))} for p in people
    ]
    return {
        "top1": float(np.mean(pred == lab)),
        "top5": float(np.mean(top5)),
        "macro_f1": float(f1_score(lab, pred, labels=people, average="macro")),
        "folds": folds,
        "people": int(len(people)),
        "images": int(len(lab)),
        "people_left_out": dropped,
        "per_person": per_person,
        "_pred": pred,
        "_true": lab,
    }


FPIR_POINTS = (0.01, 0.001)


def open_set(
    embeddings: np.ndarray,
    labels: np.ndarray,
    *,
    min_images: int = 10,
    trials: int = 5,
    metric: str = "euclidean",
    seed: int = 0,
    far: float = 0.01,
    k: int = 3,
    pipeline=None,
) -> dict:
    """Known people (>= min_images): half of each person's images enrolled, the rest genuine probes;
    everyone else's images are impostor probes. DIR(t) = share of genuine probes ranked first correctly
    within distance t; FPIR(t) = share of impostor probes within t of anyone.

    ``deployed`` measures what ``train`` + ``infer`` do on the same split: the open-set threshold
    of a gallery of the enrolled half (pipeline ``pipeline``) for stranger rate ``far``, then the
    k-NN vote: the share of impostor probes answered ``unknown`` and of genuine probes given the
    right name."""
    rng = np.random.default_rng(seed)
    counts = np.bincount(labels)
    known = np.flatnonzero(counts >= min_images)
    if len(known) < 2:
        raise DataError(f"need at least 2 people with >= {min_images} images")
    impostor_idx = np.flatnonzero(counts[labels] < min_images)
    if len(impostor_idx) == 0:
        raise DataError(f"no impostors: every person has >= {min_images} images")
    grid = np.logspace(-4, 0, 41)
    deployed = {"threshold": [], "impostors_unknown": [], "known_recognised": []}
    dirs = {str(f): [] for f in FPIR_POINTS}
    curves, n_genuine = [], 0
    for _ in range(trials):
        enrol, probe = [], []
        for p in known:
            idx = rng.permutation(np.flatnonzero(labels == p))
            half = len(idx) // 2
            enrol += idx[:half].tolist()
            probe += idx[half:].tolist()
        enrol, probe = np.array(enrol), np.array(probe)
        n_genuine = len(probe)
        d_gen = pairwise_distances(embeddings[probe], embeddings[enrol], metric)
        nearest = d_gen.argmin(axis=1)
        gen_dist = d_gen[np.arange(len(probe)), nearest]
        gen_ok = labels[enrol][nearest] == labels[probe]
        imp_dist = np.concatenate(
            [
                pairwise_distances(embeddings[c], embeddings[enrol], metric).min(axis=1)
                for c in np.array_split(impostor_idx, max(1, len(impostor_idx) // 2048))
            ]
        )
        imp_sorted = np.sort(imp_dist)

        def dir_at(fpir, imp_sorted=imp_sorted, gen_ok=gen_ok, gen_dist=gen_dist):
            n_acc = int(np.floor(fpir * len(imp_sorted)))  # impostors allowed through
            t = imp_sorted[n_acc] if n_acc < len(imp_sorted) else np.inf  # accept d < t
            return float(np.mean(gen_ok & (gen_dist < t)))

        for f in FPIR_POINTS:
            dirs[str(f)].append(dir_at(f))
        curves.append([1 - dir_at(f) for f in grid])
        for key, value in _deployed(embeddings, labels, enrol, probe, impostor_idx, metric, far, k, pipeline).items():
            deployed[key].append(value)
    return {
        "dir_at_fpir": {k: float(np.mean(v)) for k, v in dirs.items()},
        "dir_at_fpir_std": {k: float(np.std(v)) for k, v in dirs.items()},
        "dir_at_fpir_min": {k: float(np.min(v)) for k, v in dirs.items()},
        "dir_at_fpir_max": {k: float(np.max(v)) for k, v in dirs.items()},
        "known_people": int(len(known)),
        "genuine_probes": int(n_genuine),
        "impostor_probes": int(len(impostor_idx)),
        "trials": trials,
        "deployed": {
            "far": far,
            "k": k,
            **{key: float(np.mean(v)) for key, v in deployed.items()},
            **{f"{key}_min": float(np.min(v)) for key, v in deployed.items() if key != "threshold"},
        },
        "_curve": (grid, np.mean(curves, axis=0)),
    }


def _deployed(embeddings, labels, enrol, probe, impostors, metric, far, k, pipeline) -> dict:
    """train (gallery + its threshold for stranger rate ``far``) and infer (k-NN vote, unknown above it)."""
    from facerec.gallery import Gallery
    from facerec.gallery.calibration import open_set_calibration, per_sample_distances
    from facerec.gallery.identify import identify

    names = [str(i) for i in range(int(labels.max()) + 1)]
    gallery = Gallery(k=k, metric=metric, pipeline=pipeline)
    gallery.fit(embeddings[enrol], labels[enrol], names, [str(i) for i in enrol])
    gallery.genuine_d_[:], gallery.impostor_d_[:] = per_sample_distances(embeddings[enrol], labels[enrol], metric)
    cal = open_set_calibration(gallery, fpir=far)
    known = identify(gallery, embeddings[probe], topk=k, calibration=cal)
    strangers = identify(gallery, embeddings[impostors], topk=k, calibration=cal)
    return {
        "threshold": cal.threshold,
        "impostors_unknown": float(np.mean([p.unknown for p in strangers])),
        "known_recognised": float(np.mean([p.label == t for p, t in zip(known, labels[probe])])),
    }
