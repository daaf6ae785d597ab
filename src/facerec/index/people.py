"""Search that uses who each face belongs to: find the closest people first, then their faces.

A face gallery is labelled, and a query's nearest face almost always belongs to one of the few
people whose mean face is nearest. So the index keeps an HNSW graph over one mean face per person
(a gallery of a million faces of 250,000 people is a graph of 250,000 points) and then ranks the
faces of the ``people`` closest people exactly. Unlike a graph over every face, it never loses the
nearest face to a near-duplicate of the same person, and it grows without a rebuild.
"""
from __future__ import annotations

import numpy as np

from ..errors import InputError
from .base import SearchIndex, unit_rows
from .faiss_index import import_faiss


class PeopleIndex(SearchIndex):
    """HNSW over per-person mean faces, then exact distances to the faces of the closest people.

    Args: people how many closest people's faces are ranked exactly (recall vs latency); m,
    ef_construction, ef_search the HNSW graph over the mean faces (see ``faiss-hnsw``).
    When faces added later have doubled a person's count, their new mean face joins the graph
    beside the old one (an HNSW graph cannot move a point), so enrolling more photos of someone
    keeps them easy to find without a rebuild.
    """

    name = "faiss-people"
    needs_labels = True

    def __init__(self, metric: str = "euclidean", *, people: int = 16, m: int = 32, ef_construction: int = 80,
                 ef_search: int = 64):
        super().__init__(metric)
        if int(people) < 1:
            raise ValueError(f"people must be >= 1, got {people}")
        self.people, self.m, self.ef_construction, self.ef_search = int(people), int(m), int(ef_construction), int(ef_search)

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(x, np.float32))
        return unit_rows(x) if self.metric == "cosine" else x

    @staticmethod
    def _check_labels(labels, n: int) -> np.ndarray:
        if labels is None:
            raise InputError("the faiss-people index needs to know whose face each vector is (labels)")
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise InputError(f"expected {n} labels, got shape {labels.shape}")
        return labels

    def build(self, vectors, labels=None):
        faiss = import_faiss()
        v = self._prepare(vectors)
        labels = self._check_labels(labels, len(v))
        self._vectors = v
        self._sq = np.einsum("ij,ij->i", v, v)
        self._graph = faiss.IndexHNSWFlat(v.shape[1], self.m,
                                          faiss.METRIC_INNER_PRODUCT if self.metric == "cosine" else faiss.METRIC_L2)
        self._graph.hnsw.efConstruction = self.ef_construction
        self._rows: list[np.ndarray] = []  # per person slot: row numbers of their faces
        self._slot: dict = {}  # label -> person slot
        self._meaned: list[int] = []  # per person slot: faces they had when their last mean was added
        self._owner = np.zeros(0, np.int64)  # graph id -> person slot
        self.size = 0
        self._index_rows(np.arange(len(v)), labels)
        return self

    def add(self, vectors, labels=None):
        if not self.size:
            return self.build(vectors, labels)
        v = self._prepare(vectors)
        labels = self._check_labels(labels, len(v))
        start = len(self._vectors)
        self._vectors = np.concatenate([self._vectors, v])
        self._sq = np.concatenate([self._sq, np.einsum("ij,ij->i", v, v)])
        self._index_rows(np.arange(start, start + len(v)), labels)
        return self

    def _index_rows(self, rows: np.ndarray, labels: np.ndarray) -> None:
        """Append rows to their people; people seen for the first time get a mean face in the graph."""
        uniq, inverse = np.unique(labels, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(uniq)))])
        new_means, owners = [], []
        for j, label in enumerate(uniq.tolist()):
            members = rows[order[bounds[j]:bounds[j + 1]]]
            slot = self._slot.get(label)
            if slot is None:
                slot = self._slot[label] = len(self._rows)
                self._rows.append(members)
                self._meaned.append(0)
            else:
                self._rows[slot] = np.concatenate([self._rows[slot], members])
            if len(self._rows[slot]) >= 2 * self._meaned[slot]:  # new, or doubled since their last mean
                new_means.append(self._vectors[self._rows[slot]].mean(0))
                owners.append(slot)
                self._meaned[slot] = len(self._rows[slot])
        if new_means:
            means = np.stack(new_means).astype(np.float32)
            self._graph.add(unit_rows(means) if self.metric == "cosine" else means)
            self._owner = np.concatenate([self._owner, np.array(owners, np.int64)])
        self.size = len(self._vectors)

    def _search(self, queries, k):
        q = self._prepare(queries)
        extra = len(self._owner) - len(self._rows)  # people with more than one mean face
        want = min(self.people + min(extra, self.people), len(self._owner))
        self._graph.hnsw.efSearch = max(self.ef_search, want)
        _, found = self._graph.search(q, want)
        dist = np.full((len(q), k), np.inf, np.float32)
        idx = np.full((len(q), k), -1, np.int64)
        for i, ids in enumerate(found):
            # graph ids -> people, nearest first, each once: the closest `people` people
            slots = list(dict.fromkeys(self._owner[ids[ids >= 0]].tolist()))[:self.people]
            if not slots:
                continue  # nothing found: the row stays -1 / inf
            cand = np.concatenate([self._rows[s] for s in slots])
            scores = self._vectors[cand] @ q[i]
            if self.metric == "cosine":
                d = 1.0 - scores
            else:
                d = np.sqrt(np.maximum(self._sq[cand] - 2.0 * scores + q[i] @ q[i], 0.0))
            top = np.argpartition(d, k - 1)[:k] if len(d) > k else np.arange(len(d))
            top = top[np.argsort(d[top], kind="stable")]
            dist[i, :len(top)], idx[i, :len(top)] = d[top], cand[top]
        return dist, idx

    @property
    def params(self):
        return {"people": self.people, "m": self.m, "ef_construction": self.ef_construction, "ef_search": self.ef_search}

    def memory_bytes(self) -> int:
        if not self.size:
            return 0
        faiss = import_faiss()
        rows = sum(r.nbytes for r in self._rows) + self._owner.nbytes
        return int(self._vectors.nbytes + self._sq.nbytes + rows + faiss.serialize_index(self._graph).nbytes)
