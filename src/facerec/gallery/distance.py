"""Distances between L2-normalised embeddings, the one formula every stage uses."""

from __future__ import annotations

import numpy as np


def pairwise_distances(a: np.ndarray, b: np.ndarray, metric: str = "euclidean") -> np.ndarray:
    """Distances between rows of a (n, d) and b (m, d), float32 (n, m); inputs L2-normalised."""
    sim = a @ b.T
    if metric == "cosine":
        return (1.0 - sim).astype(np.float32)
    return np.sqrt(np.maximum(2.0 - 2.0 * sim, 0.0)).astype(np.float32)
