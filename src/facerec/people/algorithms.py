"""Grouping face embeddings into people: the algorithms we measured, behind one call.

Every algorithm takes unit embeddings and one distance threshold (Euclidean between unit vectors,
from the embedder's calibration: :mod:`facerec.people.threshold`) and returns a label per face,
``-1`` for a face that joined no group of at least ``min_faces``.

- ``average``: average-linkage agglomerative clustering, cut where the mean distance between two
  groups passes the threshold. Exact (scipy) up to :data:`EXACT_AVERAGE_MAX` faces; above that,
  over the k-NN graph (two groups merge only through their neighbours' links).
- ``chinese-whispers``: dlib's label propagation over the graph of neighbours within the
  threshold (what face_recognition users run).
- ``dbscan``, ``hdbscan``: scikit-learn's density clustering (Immich runs DBSCAN); HDBSCAN takes
  no threshold (see :func:`cluster`).

Which one is the default, and why, is measured: see the README's "People discovery" section.
"""

from __future__ import annotations

import numpy as np

from facerec.errors import InputError
from facerec.people.metrics import UNGROUPED

ALGORITHMS = ("average", "chinese-whispers", "dbscan", "hdbscan")
DEFAULT_ALGORITHM = "average"
DEFAULT_MIN_FACES = 3  # Immich's default too: a pair of look-alikes is not yet a person
GRAPH_NEIGHBOURS = 20  # the k of the k-NN graph that the graph algorithms see
EXACT_AVERAGE_MAX = 30_000  # faces: scipy's exact linkage holds n^2/2 float64 distances (3.6 GB here)
EXACT_KNN_MAX = 200_000  # faces searched exactly by faiss; above, an inverted-file index
IVF_PROBES = 16  # lists searched per face above EXACT_KNN_MAX


def knn_graph(emb: np.ndarray, k: int = GRAPH_NEIGHBOURS) -> tuple[np.ndarray, np.ndarray]:
    """Each face's ``k`` nearest other faces: (int64 (n, k) indices, -1 where there are fewer;
    float32 (n, k) Euclidean distances)."""
    import faiss

    emb = np.ascontiguousarray(emb, np.float32)
    n, d = emb.shape
    k = min(k, n - 1)
    if k < 1:
        return np.full((n, 0), -1, np.int64), np.zeros((n, 0), np.float32)
    if n <= EXACT_KNN_MAX:
        index = faiss.IndexFlatIP(d)
    else:  # approximate: an inverted file, trained on a sample (10^6 faces in about a minute here)
        nlist = int(4 * np.sqrt(n))
        quantizer = faiss.IndexFlatIP(d)  # held here while the index lives: faiss does not own it
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        index.train(emb[rng.choice(n, min(n, 64 * nlist), replace=False)])
        index.nprobe = IVF_PROBES
    index.add(emb)
    sim, idx = index.search(emb, k + 1)
    # drop each face itself (not always first: an exact duplicate ties with it); a face not
    # among its own neighbours (approximate search) loses its farthest instead
    own = idx == np.arange(n)[:, None]
    drop = np.where(own.any(1), own.argmax(1), k)
    keep = np.ones(idx.shape, bool)
    keep[np.arange(n), drop] = False
    idx, sim = idx[keep].reshape(n, k), sim[keep].reshape(n, k)
    dist = np.sqrt(np.maximum(2.0 - 2.0 * sim, 0.0)).astype(np.float32)
    return idx.astype(np.int64), dist


def cluster(
    emb: np.ndarray,
    threshold: float,
    *,
    algorithm: str = DEFAULT_ALGORITHM,
    min_faces: int = DEFAULT_MIN_FACES,
    seed: int = 0,
) -> np.ndarray:
    """int64 (n,) cluster labels 0..m-1 (biggest cluster first), -1 for an ungrouped face."""
    if algorithm not in ALGORITHMS:
        raise InputError(f"unknown clustering algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")
    if not np.isfinite(threshold) or threshold <= 0:
        raise InputError(f"the clustering threshold must be a positive distance, got {threshold}")
    if min_faces < 1:
        raise InputError(f"min faces must be >= 1, got {min_faces}")
    emb = np.ascontiguousarray(emb, np.float32)
    if len(emb) == 0:
        return np.zeros(0, np.int64)
    if len(emb) == 1:
        return np.array([0 if min_faces <= 1 else UNGROUPED], np.int64)
    if algorithm == "average":
        labels = average_linkage(emb, threshold)
    elif algorithm == "chinese-whispers":
        labels = chinese_whispers(*knn_graph(emb), threshold, seed=seed)
    elif algorithm == "dbscan":
        from sklearn.cluster import DBSCAN

        labels = DBSCAN(eps=threshold, min_samples=min_faces).fit_predict(emb)
    else:
        from sklearn.cluster import HDBSCAN

        # no cluster_selection_epsilon (the threshold): on NumPy 2 it raises a TypeError in
        # scikit-learn 1.9 (scikit-learn issue #33219), so HDBSCAN runs on density alone
        labels = HDBSCAN(min_cluster_size=max(min_faces, 2), copy=True).fit_predict(emb)
    return relabel(labels, min_faces)


def relabel(labels: np.ndarray, min_faces: int) -> np.ndarray:
    """Labels renumbered biggest cluster first; clusters under ``min_faces`` become ungrouped (-1)."""
    labels = np.asarray(labels, np.int64)
    out = np.full(len(labels), UNGROUPED, np.int64)
    grouped = labels != UNGROUPED
    if not grouped.any():
        return out
    ids, inverse, counts = np.unique(labels[grouped], return_inverse=True, return_counts=True)
    order = np.lexsort((ids, -counts))  # biggest first; ties by the old label (deterministic)
    rank = np.empty(len(ids), np.int64)
    rank[order] = np.arange(len(ids))
    new = rank[inverse]
    big = counts[inverse] >= min_faces
    kept = np.full(len(ids), -1, np.int64)
    kept_ids = np.unique(new[big])
    kept[kept_ids] = np.arange(len(kept_ids))
    out[np.flatnonzero(grouped)[big]] = kept[new[big]]
    return out


def average_linkage(emb: np.ndarray, threshold: float) -> np.ndarray:
    """Average-linkage groups: exact below :data:`EXACT_AVERAGE_MAX` faces, else over the k-NN graph."""
    if len(emb) <= EXACT_AVERAGE_MAX:
        from scipy.cluster.hierarchy import fcluster, linkage

        z = linkage(emb.astype(np.float64), method="average", metric="euclidean")
        return fcluster(z, t=threshold, criterion="distance").astype(np.int64)
    return graph_average_linkage(emb, *knn_graph(emb), threshold)


def graph_average_linkage(emb: np.ndarray, nbr: np.ndarray, dist: np.ndarray, threshold: float) -> np.ndarray:
    """Average linkage for collections too big for the exact one, in rounds. The k-NN graph only
    proposes which groups may merge (those with a link within 1.5x the threshold); the decision
    uses the groups' true average: for unit vectors the mean squared distance between the faces
    of groups A and B is exactly 2 - 2 mean(A).mean(B), so two groups merge when the root of it
    is within the threshold and they are each other's nearest candidate (mutual nearest groups,
    as in the nearest-neighbour chain of exact average linkage). A chain of faces each near the
    next never merges end to end: its ends' means are far apart. O(candidate pairs x d) a round."""
    n = len(nbr)
    ok = (nbr >= 0) & (dist <= threshold * 1.5)
    a = np.repeat(np.arange(n), nbr.shape[1])[ok.ravel()]
    b = nbr.ravel()[ok.ravel()]
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    key = np.unique(lo * n + hi)
    a, b = key // n, key % n
    group = np.arange(n)
    sums = np.asarray(emb, np.float64).copy()  # per group: the sum of its unit vectors
    size = np.ones(n, np.int64)
    limit = 1.0 - threshold * threshold / 2.0  # mean(A).mean(B) at or above: within the threshold
    while True:
        ga, gb = group[a], group[b]
        cross = ga != gb
        if not cross.any():
            break
        a, b = a[cross], b[cross]  # links inside a group never matter again
        lo, hi = np.minimum(ga[cross], gb[cross]), np.maximum(ga[cross], gb[cross])
        pair = np.unique(lo * n + hi)
        pa, pb = pair // n, pair % n
        sim = np.empty(len(pa))
        for s0 in range(0, len(pa), 1 << 18):  # bounded memory: 2^18 pairs x d at a time
            s1 = s0 + (1 << 18)
            sim[s0:s1] = np.einsum("ij,ij->i", sums[pa[s0:s1]], sums[pb[s0:s1]]) / (size[pa[s0:s1]] * size[pb[s0:s1]])
        close = sim >= limit
        if not close.any():
            break
        pa, pb, sim = pa[close], pb[close], sim[close]
        best = np.full(n, -np.inf)
        np.maximum.at(best, pa, sim)
        np.maximum.at(best, pb, sim)
        mutual = (sim == best[pa]) & (sim == best[pb])
        pa, pb = pa[mutual], pb[mutual]
        _, once = np.unique(pa, return_index=True)  # exact ties: one partner each
        pa, pb = pa[once], pb[once]
        _, once = np.unique(pb, return_index=True)
        pa, pb = pa[once], pb[once]
        free = ~np.isin(pa, pb)
        pa, pb = pa[free], pb[free]
        if len(pa) == 0:
            break
        sums[pa] += sums[pb]
        size[pa] += size[pb]
        target = np.arange(n)
        target[pb] = pa
        group = target[group]
    return group


def chinese_whispers(
    nbr: np.ndarray, dist: np.ndarray, threshold: float, *, iterations: int = 30, seed: int = 0
) -> np.ndarray:
    """Chinese whispers (Biemann 2006; dlib's ``chinese_whispers_clustering``): every face starts
    as its own label and repeatedly takes the label most common among its neighbours within the
    threshold. Vectorised: each round a random half of the faces update at once (all at once
    oscillates between two labels)."""
    n = len(nbr)
    ok = (nbr >= 0) & (dist <= threshold)
    a = np.repeat(np.arange(n), nbr.shape[1])[ok.ravel()]
    b = nbr.ravel()[ok.ravel()]
    src, dst = np.concatenate([a, b]), np.concatenate([b, a])  # links go both ways
    key = np.unique(src * n + dst)
    src, dst = key // n, key % n
    labels = np.arange(n)
    rng = np.random.default_rng(seed)
    for _ in range(iterations):
        if len(src) == 0:
            break
        votes, count = np.unique(src * n + labels[dst], return_counts=True)
        node, label = votes // n, votes % n
        # each node's most voted label, ties broken at random
        order = np.lexsort((rng.random(len(node)), -count, node))
        node, label = node[order], label[order]
        head = np.r_[True, node[1:] != node[:-1]]
        winner = labels.copy()
        winner[node[head]] = label[head]
        move = rng.random(n) < 0.5
        changed = move & (winner != labels)
        if not changed.any() and np.array_equal(winner, labels):
            break
        labels = np.where(move, winner, labels)
    return labels
