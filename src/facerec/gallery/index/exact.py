"""Exact search: one batched matrix product and a top-k, in NumPy on the CPU, in PyTorch on a GPU."""

from __future__ import annotations

import numpy as np

from facerec.errors import InputError
from facerec.gallery.index.base import SearchIndex, unit_rows
from facerec.runtime.device import resolve_device

# Score matrix per matrix product on a CPU: (chunk, n) float32 in ~256 MB.
CPU_SCORE_BYTES = 2**28


class ExactIndex(SearchIndex):
    """Brute force, exactly: distances to every gallery vector via ``Q @ G.T`` and a top-k.

    On the CPU the vectors are NumPy arrays (no PyTorch needed); on a GPU they are a tensor there.

    Args:
        device: ``auto`` (CUDA when PyTorch sees one), ``cpu`` or ``cuda``.
        precision: ``fp32`` or ``fp16`` (GPU only: halves memory traffic; scores are then exact to
            about 1e-3, so near-ties may swap order, and Euclidean distances near 0 are off by up to
            ~0.03; on the H200, 0.998 of nearest neighbours agreed with fp32 at 10^6 faces).
        chunk: queries per matrix product at most (fewer on large galleries, bounding the
            (chunk, n) score matrix in memory).
    """

    name = "exact"

    def __init__(self, metric: str = "euclidean", *, device: str = "auto", precision: str = "fp32", chunk: int = 1024):
        super().__init__(metric)
        if precision not in ("fp32", "fp16"):
            raise InputError(f"exact index precision must be fp32 or fp16, got {precision!r}")
        self.device, self.precision, self.chunk = resolve_device(device), precision, int(chunk)
        self._store = NumpyRows() if self.device == "cpu" else TorchRows(self.device, precision)

    def build(self, vectors: np.ndarray, labels=None) -> ExactIndex:
        self._store.clear()
        self.size = 0
        return self.add(vectors)

    def add(self, vectors: np.ndarray, labels=None) -> ExactIndex:
        v = np.asarray(vectors, np.float32)
        if self.metric == "cosine":
            v = unit_rows(v)
        self._store.append(np.ascontiguousarray(v), self.size)
        self.size, self.dim = self.size + len(v), v.shape[1]
        return self

    def _search(self, queries, k):
        if self.metric == "cosine":
            queries = unit_rows(queries)
        return self._store.search(np.ascontiguousarray(queries, np.float32), self.size, k, self.metric, self.chunk)

    @property
    def params(self) -> dict:
        return {"precision": self.precision}

    def memory_bytes(self) -> int:
        return self._store.bytes(self.size) if self.size else 0


class NumpyRows:
    """The gallery's rows as a float32 NumPy buffer that doubles when full (adding copies only the
    new rows), with each row's squared norm; searched with one BLAS product per chunk of queries."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self._buf, self._sq = np.zeros((0, 0), np.float32), np.zeros(0, np.float32)

    def append(self, v: np.ndarray, size: int) -> None:
        if size == 0:
            self._buf, self._sq = v.copy(), np.einsum("ij,ij->i", v, v)
            return
        if v.shape[1] != self._buf.shape[1]:
            raise InputError(f"vectors of length {v.shape[1]} added to an index of length {self._buf.shape[1]}")
        need = size + len(v)
        if need > len(self._buf):
            cap = max(need, 2 * len(self._buf))
            buf, sq = np.empty((cap, v.shape[1]), np.float32), np.empty(cap, np.float32)
            buf[:size], sq[:size] = self._buf[:size], self._sq[:size]
            self._buf, self._sq = buf, sq
        self._buf[size:need] = v
        self._sq[size:need] = np.einsum("ij,ij->i", v, v)

    def search(self, queries: np.ndarray, size: int, k: int, metric: str, chunk: int):
        g, neg_sq = self._buf[:size], -self._sq[:size]
        rows = max(1, min(chunk, CPU_SCORE_BYTES // (4 * max(size, 1))))
        dist, idx = np.empty((len(queries), k), np.float32), np.empty((len(queries), k), np.int64)
        for s in range(0, len(queries), rows):
            q = queries[s : s + rows]
            if metric == "cosine":
                scores = q @ g.T
            else:  # nearest = largest 2 q.g - |g|^2 (|q|^2 is the same for the whole row); 2q is exact
                scores = (2.0 * q) @ g.T
                scores += neg_sq
            best, best_i = top_k(scores, k)
            if metric == "cosine":
                d = 1.0 - best
            else:
                d = np.sqrt(np.maximum(np.einsum("ij,ij->i", q, q)[:, None] - best, 0.0))
            dist[s : s + rows], idx[s : s + rows] = d, best_i
        return dist, idx

    def bytes(self, size: int) -> int:
        return int(size * self._buf.shape[1] * 4)


# Up to this k, a top-k is k passes of argmax (each chosen score then set to -inf): NumPy's argmax is
# vectorised, its argpartition is not (1,000 x 50,000 scores, k = 5: 0.13 s against 0.3 s).
ARGMAX_PASSES = 8


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` largest scores and their columns, largest first: float32 and int64 (m, k).
    ``scores`` may be overwritten. Small k: k argmax passes; larger: a partition, then a sort of
    the k chosen only."""
    rows = np.arange(len(scores))[:, None]
    if k <= ARGMAX_PASSES:
        idx = np.empty((len(scores), k), np.int64)
        best = np.empty((len(scores), k), np.float32)
        for j in range(k):
            idx[:, j] = scores.argmax(1)
            best[:, j] = scores[rows[:, 0], idx[:, j]]
            scores[rows[:, 0], idx[:, j]] = -np.inf
        return best, idx
    chosen = np.argpartition(scores, -k, axis=1)[:, -k:] if k < scores.shape[1] else np.argsort(scores, axis=1)
    order = np.argsort(-scores[rows, chosen], axis=1, kind="stable")
    idx = chosen[rows, order].astype(np.int64)
    return scores[rows, idx], idx


class TorchRows:
    """The gallery's rows as a tensor on a GPU (fp32 or fp16), in a buffer that doubles when full;
    searched with one fused GEMM and a top-k per chunk, copied to the host once at the end. It
    runs on a CPU too (fp32), where NumPy's is used instead: as fast, and no PyTorch needed."""

    def __init__(self, device: str, precision: str):
        import torch

        self.device = device
        self._dtype = torch.float16 if (precision == "fp16" and device != "cpu") else torch.float32
        self.clear()

    def clear(self) -> None:
        self._buf = self._sq = None

    def append(self, v: np.ndarray, size: int) -> None:
        import torch

        new = torch.from_numpy(v).to(self.device, self._dtype)
        if size == 0:
            self._buf, self._sq = new, (new.float() ** 2).sum(1)
            return
        need = size + len(new)
        if need > len(self._buf):
            cap = max(need, 2 * len(self._buf))
            buf = self._buf.new_empty((cap, self._buf.shape[1]))
            buf[:size] = self._buf[:size]
            sq = self._sq.new_empty(cap)
            sq[:size] = self._sq[:size]
            self._buf, self._sq = buf, sq
        self._buf[size:need] = new
        self._sq[size:need] = (new.float() ** 2).sum(1)

    def search(self, queries: np.ndarray, size: int, k: int, metric: str, chunk: int):
        import torch

        g = self._buf[:size]
        out_d, out_i = [], []
        rows = self._chunk_rows(size, chunk, g)
        with torch.inference_mode():
            q_all = torch.from_numpy(queries).to(self.device)
            neg_sq = None if metric == "cosine" else (-self._sq[:size]).to(self._dtype)
            for s in range(0, len(q_all), rows):
                q = q_all[s : s + rows]
                if neg_sq is None:
                    scores = q.to(self._dtype) @ g.T
                else:  # nearest = largest 2 q.g - |g|^2 (|q|^2 is the same for the whole row): one fused GEMM
                    scores = torch.addmm(neg_sq, q.to(self._dtype), g.T, alpha=2.0)
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

    def _chunk_rows(self, size: int, chunk: int, g) -> int:
        """Queries per matrix product: the (chunk, n) score matrix in up to 2 GB (or an eighth of
        the free memory) on a GPU, where bigger products run closer to peak; as NumPy's on a CPU."""
        import torch

        budget = CPU_SCORE_BYTES
        if g.device.type == "cuda":
            budget = min(2**31, torch.cuda.mem_get_info(g.device)[0] // 8)
        per_row = max(size, 1) * torch.finfo(self._dtype).bits // 8
        return max(1, min(chunk, budget // per_row))

    def bytes(self, size: int) -> int:
        return int(size * self._buf.shape[1] * self._buf.element_size())
