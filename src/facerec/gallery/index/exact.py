"""Exact search: one batched matrix product and a top-k, on the GPU when there is one."""

from __future__ import annotations

import numpy as np

from facerec.errors import InputError
from facerec.gallery.index.base import SearchIndex, unit_rows


class ExactIndex(SearchIndex):
    """Brute force, exactly: distances to every gallery vector via ``Q @ G.T`` and ``topk``.

    Args:
        device: ``auto`` (CUDA when available), ``cpu`` or ``cuda``.
        precision: ``fp32`` or ``fp16`` (GPU only: halves memory traffic; scores are then exact to
            about 1e-3, so near-ties may swap order, and Euclidean distances near 0 are off by up to
            ~0.03; on the H200, 0.998 of nearest neighbours agreed with fp32 at 10^6 faces).
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
            raise InputError(f"exact index precision must be fp32 or fp16, got {precision!r}")
        self.device, self.precision, self.chunk = device, precision, int(chunk)
        self._dtype = torch.float16 if (precision == "fp16" and device != "cpu") else torch.float32

    def build(self, vectors: np.ndarray, labels=None) -> ExactIndex:
        import torch

        v = np.asarray(vectors, np.float32)
        if self.metric == "cosine":
            v = unit_rows(v)
        self._buf = torch.from_numpy(np.ascontiguousarray(v)).to(self.device, self._dtype)
        self._buf_sq = (self._buf.float() ** 2).sum(1)
        self.size, self.dim = v.shape
        return self

    # The first ``size`` rows of buffers that double when full: adding copies only the new rows.
    _g = property(lambda self: self._buf[: self.size])
    _g_sq = property(lambda self: self._buf_sq[: self.size])

    def add(self, vectors: np.ndarray, labels=None) -> ExactIndex:
        import torch

        if not self.size:
            return self.build(vectors)
        v = np.asarray(vectors, np.float32)
        if self.metric == "cosine":
            v = unit_rows(v)
        new = torch.from_numpy(np.ascontiguousarray(v)).to(self.device, self._dtype)
        need = self.size + len(new)
        if need > len(self._buf):
            cap = max(need, 2 * len(self._buf))
            buf = self._buf.new_empty((cap, self._buf.shape[1]))
            buf[: self.size] = self._g
            sq = self._buf_sq.new_empty(cap)
            sq[: self.size] = self._g_sq
            self._buf, self._buf_sq = buf, sq
        self._buf[self.size : need] = new
        self._buf_sq[self.size : need] = (new.float() ** 2).sum(1)
        self.size = need
        return self

    def _search(self, queries, k):
        import torch

        if self.metric == "cosine":
            queries = unit_rows(queries)
        out_d, out_i = [], []
        chunk = self._chunk_rows()
        with torch.inference_mode():
            q_all = torch.from_numpy(np.ascontiguousarray(queries, np.float32)).to(self.device)
            neg_sq = None if self.metric == "cosine" else (-self._g_sq).to(self._dtype)
            for s in range(0, len(q_all), chunk):
                q = q_all[s : s + chunk]
                if neg_sq is None:
                    scores = q.to(self._dtype) @ self._g.T
                else:  # nearest = largest 2 q.g - |g|^2 (|q|^2 is the same for the whole row): one fused GEMM
                    scores = torch.addmm(neg_sq, q.to(self._dtype), self._g.T, alpha=2.0)
                # k = 1 is a plain max: one pass over the scores instead of a top-k selection
                best, idx = scores.max(1, keepdim=True) if k == 1 else torch.topk(scores, k, dim=1)
                best = best.float()
                if neg_sq is None:
                    dist = 1.0 - best
                else:
                    dist = torch.sqrt(torch.clamp((q**2).sum(1, keepdim=True) - best, min=0.0))
                out_d.append(dist)
                out_i.append(idx)
            # one copy to the host at the end: no sync per chunk
            dist, idx = torch.cat(out_d).cpu().numpy(), torch.cat(out_i).cpu().numpy()
        return dist.astype(np.float32), idx.astype(np.int64)

    def _chunk_rows(self) -> int:
        """Queries per matrix product: the (chunk, n) score matrix in ~256 MB on a CPU, in up to
        2 GB (or an eighth of the free memory) on a GPU, where bigger products run closer to peak."""
        import torch

        budget = 2**28
        if self.device != "cpu" and torch.cuda.is_available():
            budget = min(2**31, torch.cuda.mem_get_info(self._g.device)[0] // 8)
        per_row = max(self.size, 1) * torch.finfo(self._dtype).bits // 8
        return max(1, min(self.chunk, budget // per_row))

    @property
    def params(self) -> dict:
        return {"precision": self.precision}

    def memory_bytes(self) -> int:
        return int(self._g.numel() * self._g.element_size()) if self.size else 0
