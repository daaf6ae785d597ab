"""LFW View 2 verification: 10 folds; the threshold is chosen on 9 folds, measured on the 10th."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facerec.embed.base import l2_normalize
from facerec.errors import DataError


@dataclass
class Pair:
    fold: int
    a: str
    b: str
    same: bool


def read_pairs(pairs_file: str | Path, lfw_dir: str | Path) -> list[Pair]:
    """Parse ``pairs.txt`` (header ``folds n``, then per fold n matched and n mismatched lines)."""
    lines = [l.split() for l in Path(pairs_file).read_text().splitlines() if l.strip()]
    try:
        folds, n = int(lines[0][0]), int(lines[0][1])
    except (IndexError, ValueError):
        raise DataError(f"{pairs_file}: first line must be '<folds> <pairs per half-fold>'") from None
    body = lines[1:]
    if len(body) != folds * 2 * n:
        raise DataError(f"{pairs_file}: expected {folds * 2 * n} pairs, found {len(body)}")
    root = Path(lfw_dir)

    def img(name, num):
        return str(root / name / f"{name}_{int(num):04d}.jpg")

    pairs = []
    for i, f in enumerate(body):
        fold = i // (2 * n)
        if len(f) == 3:
            pairs.append(Pair(fold, img(f[0], f[1]), img(f[0], f[2]), True))
        elif len(f) == 4:
            pairs.append(Pair(fold, img(f[0], f[1]), img(f[2], f[3]), False))
        else:
            raise DataError(f"{pairs_file}: line {i + 2} is not a pair: {' '.join(f)}")
    return pairs


def best_threshold(dist: np.ndarray, same: np.ndarray) -> float:
    """The threshold that maximises accuracy (same := dist <= t) on these pairs."""
    order = np.argsort(dist)
    d, s = dist[order], same[order]
    # accepting the first i pairs: correct = genuine among them + impostors after them
    correct = np.concatenate([[0], np.cumsum(s)]) + (np.sum(~s) - np.concatenate([[0], np.cumsum(~s)]))
    i = int(np.argmax(correct))
    if i == 0:
        return float(d[0]) - 1e-6
    if i == len(d):
        return float(d[-1]) + 1e-6
    return float((d[i - 1] + d[i]) / 2)


def roc_metrics(dist: np.ndarray, same: np.ndarray) -> dict:
    from sklearn.metrics import roc_auc_score, roc_curve

    fpr, tpr, thr = roc_curve(same, -dist)
    eer_i = int(np.argmin(np.abs(fpr - (1 - tpr))))
    tar = {}
    for far in (1e-2, 1e-3):
        ok = fpr <= far
        tar[str(far)] = float(tpr[ok].max()) if ok.any() else 0.0
    return {
        "auc": float(roc_auc_score(same, -dist)),
        "eer": float((fpr[eer_i] + 1 - tpr[eer_i]) / 2),
        "eer_threshold": float(-thr[eer_i]),
        "tar_at_far": tar,
        "roc": (fpr, tpr),
    }


def evaluate_pairs(
    pairs: list[Pair], embeddings: dict[str, np.ndarray], *, metric: str = "euclidean", subtract_mean: bool = False
) -> dict:
    """10-fold accuracy (threshold from the other folds), ROC AUC, EER and TAR at FAR."""
    a = np.stack([embeddings[p.a] for p in pairs])
    b = np.stack([embeddings[p.b] for p in pairs])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    accs, thresholds = [], []
    all_dist = np.zeros(len(pairs), np.float32)
    single = len(np.unique(folds)) == 1  # one fold: its threshold can only come from itself (optimistic)
    for f in np.unique(folds):
        train, test = (folds == f if single else folds != f), folds == f
        if subtract_mean:  # the mean face embedding of the training folds, as FaceNet's evaluation does
            mu = np.concatenate([a[train], b[train]]).mean(axis=0)
            fa, fb = l2_normalize(a - mu), l2_normalize(b - mu)
        else:
            fa, fb = a, b
        dist = _rowwise(fa, fb, metric)
        t = best_threshold(dist[train], same[train])
        accs.append(float(np.mean((dist[test] <= t) == same[test])))
        thresholds.append(t)
        all_dist[test] = dist[test]
    roc = roc_metrics(all_dist, same)
    return {
        "accuracy_mean": float(np.mean(accs)),
        "accuracy_std": float(np.std(accs)),
        "fold_accuracy": accs,
        "fold_threshold": thresholds,
        "auc": roc["auc"],
        "eer": roc["eer"],
        "eer_threshold": roc["eer_threshold"],
        "tar_at_far": roc["tar_at_far"],
        "pairs": len(pairs),
        "threshold_on_same_fold": single,
        "roc": roc["roc"],
    }


def _rowwise(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    sim = np.sum(a * b, axis=1)
    if metric == "cosine":
        return (1 - sim).astype(np.float32)
    return np.sqrt(np.maximum(2 - 2 * sim, 0)).astype(np.float32)
