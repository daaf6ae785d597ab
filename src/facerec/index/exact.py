"""Exact search: one batched matrix product and a top-k, on the GPU when there is one."""
from __future__ import annotations

import numpy as np

from .base import SearchIndex, unit_rows


class ExactIndex(SearchIndex):
    """Brute force, exactly: distances to every gallery vector via ``Q @ G.T`` and ``topk``.

    Args:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        precision: ``fp32`` or ``fp16`` (GPU only: halves memory traffic; scores are then exact to
            about 1e-3, so near-ties may swap order).
        chunk: queries per matrix product at most (fewer on large galleries, bounding the
            (chunk, n) score matrix in memory).
    """

    name = "exact"

    def __init__(self, metric: str = "euclidean", *, device: str = "auto", precision: str = "fp32", chunk: int = 1024):
        super().__init__(metric)
        import torch

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"precision must be fp32 or fp16, got {precision!r}")
        self.device, self.precision, self.chunk = device, precision, int(chunk)
        self._dtype = torch.float16 if (precision == "fp16" and device != "cpu") else torch.float32

    def build(self, vectors: np.ndarray, labels=None) -> "ExactIndex":
        import torch

        v = np.asarray(vectors, np.float32)
        if self.metric == "cosine":
            v = unit_rows(v)
        self._g = torch.from_numpy(np.ascontiguousarray(v)).to(self.device, self._dtype)
        self._g_sq = (self._g.float() ** 2).sum(1)
        self.size, self.dim = v.shape
        return self

    def add(self, vectors: np.ndarray, labels=None) -> "ExactIndex":
        import torch

        if not self.size:
            return self.build(vectors)
        v = np.asarray(vectors, np.float32)
        if self.metric == "cosine":
            v = unit_rows(v)
        new = torch.from_numpy(np.ascontiguousarray(v)).to(self.device, self._dtype)
        self._g = torch.cat([self._g, new])
        self._g_sq = torch.cat([self._g_sq, (new.float() ** 2).sum(1)])
        self.size = len(self._g)
        return self

    def _search(self, queries, k):
        import torch

        if self.metric == "cosine":
            queries = unit_rows(queries)
        out_d, out_i = [], []
        # bound the (chunk, n) score matrix to ~64M entries: at 10^6 faces, 64 queries at a time
        chunk = max(1, min(self.chunk, 2 ** 26 // max(self.size, 1)))
        with torch.inference_mode():
            for s in range(0, len(queries), chunk):
                q = torch.from_numpy(queries[s:s + chunk]).to(self.device)
                scores = (q.to(self._dtype) @ self._g.T).float()
                if self.metric == "cosine":
                    best, idx = torch.topk(scores, k, dim=1)
                    dist = 1.0 - best
                else:  # nearest = largest 2 q.g - |g|^2 (|q|^2 is the same for the whole row)
                    best, idx = torch.topk(2.0 * scores - self._g_sq, k, dim=1)
                    dist = torch.sqrt(torch.clamp((q.float() ** 2).sum(1, keepdim=True) - best, min=0.0))
                out_d.append(dist.cpu().numpy())
                out_i.append(idx.cpu().numpy())
        return np.concatenate(out_d).astype(np.float32), np.concatenate(out_i).astype(np.int64)

    @property
    def params(self) -> dict:
        return {"precision": self.precision}

    def memory_bytes(self) -> int:
        return int(self._g.numel() * self._g.element_size()) if self.size else 0
