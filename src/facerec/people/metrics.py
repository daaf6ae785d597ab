"""How good a clustering is against the true people: pairwise and BCubed precision, recall and F1.

Both come from the contingency table (true person x found cluster), so they cost O(faces), not
O(faces^2). A face left ungrouped counts as a cluster of its own: it is not wrongly merged with
anyone (precision), and every pair it belongs to is missed (recall).
"""

from __future__ import annotations

import numpy as np

UNGROUPED = -1  # the cluster label of a face that joined no cluster


def singletons(pred: np.ndarray) -> np.ndarray:
    """Cluster labels with every ungrouped face (label -1) given a label of its own."""
    pred = np.asarray(pred, np.int64).copy()
    loose = pred == UNGROUPED
    pred[loose] = pred.max(initial=0) + 1 + np.arange(int(loose.sum()))
    return pred


def _contingency(true: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Over the non-empty cells of (true person x cluster): each cell's count, its person and its
    cluster; then every person's size and every cluster's (ungrouped faces are clusters of one)."""
    _, t = np.unique(np.asarray(true), return_inverse=True)
    _, p = np.unique(singletons(pred), return_inverse=True)
    cells, counts = np.unique(t.astype(np.int64) * (p.max() + 1) + p, return_counts=True)
    return counts, cells // (p.max() + 1), cells % (p.max() + 1), np.bincount(t), np.bincount(p)


def _prf(p: float, r: float) -> dict:
    f = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    return {"precision": float(p), "recall": float(r), "f1": float(f)}


def pairwise(true, pred) -> dict:
    """Precision: of the face pairs put in one cluster, how many are one person; recall: of the
    pairs of one person, how many share a cluster. A clustering that makes no pair has precision 1."""
    if len(true) == 0:
        return _prf(1.0, 1.0)
    n, _, _, t_size, p_size = _contingency(true, pred)
    pairs = lambda c: float((c * (c - 1) // 2).sum())  # noqa: E731
    tp, found, real = pairs(n), pairs(p_size), pairs(t_size)
    return _prf(tp / found if found else 1.0, tp / real if real else 1.0)


def bcubed(true, pred) -> dict:
    """Per face: the share of its cluster that is its person (precision) and the share of its
    person that is in its cluster (recall), averaged over faces (Bagga and Baldwin 1998)."""
    if len(true) == 0:
        return _prf(1.0, 1.0)
    n, ti, pj, t_size, p_size = _contingency(true, pred)
    total = float(n.sum())
    p = float((n * n / p_size[pj]).sum()) / total
    r = float((n * n / t_size[ti]).sum()) / total
    return _prf(p, r)


def scores(true, pred) -> dict:
    """Everything :func:`facerec.evaluate` reports for one clustering."""
    pred = np.asarray(pred)
    found = np.unique(pred[pred != UNGROUPED])
    return {
        "faces": int(len(pred)),
        "people": int(len(np.unique(true))),
        "clusters": int(len(found)),
        "ungrouped": float(np.mean(pred == UNGROUPED)) if len(pred) else 0.0,
        "pairwise": pairwise(true, pred),
        "bcubed": bcubed(true, pred),
    }
