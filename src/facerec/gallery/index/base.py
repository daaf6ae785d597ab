"""One interface for nearest-neighbour search over a gallery's embeddings."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from facerec.errors import InputError

METRICS = ("euclidean", "cosine")


class SearchIndex(ABC):
    """Build once over the gallery, then answer top-k queries.

    Distances are Euclidean or cosine (1 - cos) whatever the backend computes inside, so every
    backend's answers can be compared with the exact one.
    """

    name = ""

    def __init__(self, metric: str = "euclidean"):
        if metric not in METRICS:
            raise InputError(f"metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        self.size = 0

    @abstractmethod
    def build(self, vectors: np.ndarray, labels: np.ndarray | None = None) -> SearchIndex:
        """Index float32 (n, d) vectors; replaces any previous content. Returns self.

        ``labels`` (n,) say whose face each vector is; ``faiss-people`` needs them, the others ignore them."""

    @abstractmethod
    def add(self, vectors: np.ndarray, labels: np.ndarray | None = None) -> SearchIndex:
        """Append float32 (n, d) vectors (indices continue from the current size), no rebuild."""

    @abstractmethod
    def _search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest gallery vectors of each query, nearest first.

        Args: queries float32 (m, d). Returns distances float32 (m, k') and indices int64 (m, k'),
        k' = min(k, gallery size). An approximate backend may return -1 (with distance inf)
        where it found fewer than k' neighbours.
        """
        q = np.ascontiguousarray(np.asarray(queries, dtype=np.float32))
        if q.ndim != 2:
            raise InputError(f"expected queries of shape (m, d), got {q.shape}")
        if self.size == 0:
            raise InputError("the index is empty: build it first")
        k = min(int(k), self.size)
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        if len(q) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        return self._search(q, k)

    @property
    def params(self) -> dict:
        """What is stored with the model to rebuild this index the same way."""
        return {}

    def memory_bytes(self) -> int:
        """Bytes the index holds (vectors and structure), for the benchmarks."""
        return 0


def unit_rows(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)
