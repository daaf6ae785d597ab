"""Approximate search with faiss: HNSW (a graph) or IVF (clustered lists), parameters stored with the model."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from facerec.errors import InputError
from facerec.gallery.index.base import SearchIndex, unit_rows


def import_faiss():
    try:
        import faiss
    except ImportError:
        raise InputError(
            "the faiss backends need the faiss package: pip install faiss-cpu (or faiss-gpu), or choose the exact index"
        ) from None
    return faiss


#: Up to this many vectors, faiss runs on the calling thread alone: an OpenMP region for one query
#: or one enrolment saves nothing, and when the other cores are busy (a database flushing beside the
#: service) its barrier waits for a descheduled thread — milliseconds of tail latency.
SMALL_BATCH = 8


@contextmanager
def threads_for(n: int):
    """faiss's OpenMP threads for a call on ``n`` vectors (the setting is per calling thread, so
    concurrent requests do not see each other's)."""
    if n > SMALL_BATCH:
        yield
        return
    faiss = import_faiss()
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


class _FaissIndex(SearchIndex):
    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(x, np.float32))
        return unit_rows(x) if self.metric == "cosine" else x

    def _metric(self, faiss):
        return faiss.METRIC_INNER_PRODUCT if self.metric == "cosine" else faiss.METRIC_L2

    def add(self, vectors, labels=None):
        if not self.size:
            return self.build(vectors)
        v = self._prepare(vectors)
        with threads_for(len(v)):
            self._index.add(v)  # IVF: into the cells learnt at build time
        self.size = int(self._index.ntotal)
        return self

    def _search(self, queries, k):
        self._set_search_params()
        q = self._prepare(queries)
        with threads_for(len(q)):
            raw, idx = self._index.search(q, k)
        raw = raw.astype(np.float32)
        missing = idx < 0
        dist = 1.0 - raw if self.metric == "cosine" else np.sqrt(np.maximum(raw, 0.0))  # faiss L2 is squared
        dist[missing] = np.inf
        return dist.astype(np.float32), idx.astype(np.int64)

    def _set_search_params(self) -> None:
        pass

    def memory_bytes(self) -> int:
        faiss = import_faiss()
        return int(faiss.serialize_index(self._index).nbytes) if self.size else 0


class HNSWIndex(_FaissIndex):
    """Hierarchical navigable small-world graph (``IndexHNSWFlat``).

    Args: m graph degree; ef_construction build beam; ef_search query beam (recall vs latency).
    """

    name = "faiss-hnsw"

    def __init__(self, metric: str = "euclidean", *, m: int = 32, ef_construction: int = 80, ef_search: int = 64):
        super().__init__(metric)
        self.m, self.ef_construction, self.ef_search = int(m), int(ef_construction), int(ef_search)

    def build(self, vectors, labels=None):
        faiss = import_faiss()
        v = self._prepare(vectors)
        self._index = faiss.IndexHNSWFlat(v.shape[1], self.m, self._metric(faiss))
        self._index.hnsw.efConstruction = self.ef_construction
        self._index.add(v)
        self.size = len(v)
        return self

    def _set_search_params(self):
        self._index.hnsw.efSearch = max(self.ef_search, 1)

    @property
    def params(self):
        return {"m": self.m, "ef_construction": self.ef_construction, "ef_search": self.ef_search}


class IVFIndex(_FaissIndex):
    """Inverted lists over k-means cells (``IndexIVFFlat``): a query scans ``nprobe`` of ``nlist`` cells.

    Args: nlist cells (0 = about 4 sqrt(n), at most n / 39 so k-means has data); nprobe cells
    scanned per query; train_size vectors used to learn the cells (a sample of the gallery; 0 =
    40 per cell, at least 100,000, as faiss recommends).
    """

    name = "faiss-ivf"

    def __init__(
        self, metric: str = "euclidean", *, nlist: int = 0, nprobe: int = 32, train_size: int = 0, seed: int = 0
    ):
        super().__init__(metric)
        self.nlist, self.nprobe, self.train_size, self.seed = int(nlist), int(nprobe), int(train_size), int(seed)

    def build(self, vectors, labels=None):
        faiss = import_faiss()
        v = self._prepare(vectors)
        n, d = v.shape
        nlist, sample = ivf_cells(
            v, self.nlist or int(4 * np.sqrt(n)), self.train_size, np.random.default_rng(self.seed)
        )
        quantizer = faiss.IndexFlatIP(d) if self.metric == "cosine" else faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, self._metric(faiss))
        index.cp.seed = self.seed  # k-means is seeded: the same gallery gives the same index
        index.train(sample)
        index.add(v)
        self._index, self._quantizer, self.size, self.nlist_used = index, quantizer, n, nlist
        return self

    def _set_search_params(self):
        self._index.nprobe = max(1, min(self.nprobe, self.nlist_used))

    @property
    def params(self):
        return {"nlist": self.nlist, "nprobe": self.nprobe, "train_size": self.train_size, "seed": self.seed}


def ivf_cells(v: np.ndarray, nlist: int, train_size: int, rng) -> tuple[int, np.ndarray]:
    """How many k-means cells ``v`` supports (at most n / 39, so each cell has data) and the sample
    to learn them from (``train_size``; 0 = 40 per cell, at least 100,000, as faiss recommends)."""
    n = len(v)
    nlist = max(1, min(nlist, n // 39 or 1))
    train_size = train_size or max(100_000, 40 * nlist)
    return nlist, (v if n <= train_size else v[np.sort(rng.choice(n, train_size, replace=False))])
