"""Search that uses who each face belongs to: find the closest people first, then their faces.

A face gallery is labelled, and a query's nearest face almost always belongs to one of the few
people whose mean face is nearest. So the index searches one mean face per person (a gallery of a
million faces of 250,000 people has 250,000 means) for the ``people`` closest people, and then
ranks all of their faces exactly. Unlike an index over every face, it never loses the nearest
face to a near-duplicate of the same person, and it grows without a rebuild.

The means are searched in their top ``dims`` principal directions (face embeddings vary in far
fewer directions than they have: LFW's CASIA FaceNet embeddings keep 95% of their variance in 64
of 512), in k-means cells of which ``nprobe`` are scanned. On 10^6 synthetic faces built like
LFW's, cells found the right people far more often than an HNSW graph over the same means at
the same cost (see the README's search table).
"""

from __future__ import annotations

import numpy as np

from facerec.errors import InputError
from facerec.gallery.growable import GrowableArray
from facerec.gallery.index.base import SearchIndex, unit_rows
from facerec.gallery.index.faiss_index import import_faiss, ivf_cells, threads_for


class PeopleIndex(SearchIndex):
    """Mean face per person, searched in k-means cells; then exact distances to the closest people's faces.

    Args: people how many closest people's faces are ranked exactly; dims principal directions the
    means are compared in (0 or >= the embedding size: all); nlist cells (0 = 2 sqrt(people)),
    nprobe cells scanned per query (recall vs latency).
    When faces added later have doubled a person's count, their new mean face joins the cells
    beside the old one, so enrolling more photos of someone keeps them easy to find without a rebuild.
    """

    name = "faiss-people"

    def __init__(
        self,
        metric: str = "euclidean",
        *,
        people: int = 32,
        dims: int = 64,
        nlist: int = 0,
        nprobe: int = 128,
        seed: int = 0,
    ):
        super().__init__(metric)
        for key, value, low in (("people", people, 1), ("dims", dims, 0), ("nlist", nlist, 0), ("nprobe", nprobe, 1)):
            if int(value) < low:
                raise InputError(f"faiss-people {key} must be >= {low}, got {value}")
        self.people, self.dims, self.nlist, self.nprobe, self.seed = (
            int(people),
            int(dims),
            int(nlist),
            int(nprobe),
            int(seed),
        )

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
        self._grow_vectors = GrowableArray(v)
        self._grow_sq = GrowableArray(np.einsum("ij,ij->i", v, v))
        self._vectors, self._sq = self._grow_vectors.view, self._grow_sq.view
        self._faiss, self._coarse, self._basis = faiss, None, None  # made with the first mean faces
        self._rows: list[np.ndarray] = []  # per person slot: row numbers of their faces
        self._slot: dict = {}  # label -> person slot
        self._meaned: list[int] = []  # per person slot: faces they had when their last mean was added
        self._grow_owner = GrowableArray(np.zeros(0, np.int64))
        self._owner = self._grow_owner.view  # mean face id -> person slot
        self.size = 0
        self._index_rows(np.arange(len(v)), labels)
        return self

    def add(self, vectors, labels=None):
        if not self.size:
            return self.build(vectors, labels)
        v = self._prepare(vectors)
        labels = self._check_labels(labels, len(v))
        start = len(self._vectors)
        self._vectors = self._grow_vectors.append(v)  # copies only the new rows
        self._sq = self._grow_sq.append(np.einsum("ij,ij->i", v, v))
        self._index_rows(np.arange(start, start + len(v)), labels)
        return self

    def _index_rows(self, rows: np.ndarray, labels: np.ndarray) -> None:
        """Append rows to their people; new people, and people whose faces have doubled, get a mean face."""
        uniq, inverse = np.unique(labels, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(inverse, minlength=len(uniq)))])
        new_means, owners = [], []
        for j, label in enumerate(uniq.tolist()):
            members = rows[order[bounds[j] : bounds[j + 1]]]
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
            means = unit_rows(means) if self.metric == "cosine" else means
            if self._coarse is None:
                self._make_coarse(means)
            with threads_for(len(means)):
                self._coarse.add(self._project(means))
            self._owner = self._grow_owner.append(np.array(owners, np.int64))  # copies only the new ids
        self.size = len(self._vectors)

    def rows_of(self, label: int) -> np.ndarray:
        """The rows of person ``label``, as this index holds them (nothing scanned)."""
        slot = self._slot.get(int(label))
        return self._rows[slot] if slot is not None else np.zeros(0, np.int64)

    def _make_coarse(self, means: np.ndarray) -> None:
        """The projection (principal directions of these mean faces) and empty k-means cells trained
        on them (L2: on unit vectors the same order as cosine)."""
        faiss, d = self._faiss, means.shape[1]
        rng = np.random.default_rng(self.seed)
        if 0 < self.dims < d and len(means) > self.dims:
            sample = means if len(means) <= 50_000 else means[rng.choice(len(means), 50_000, replace=False)]
            centre = sample.mean(0)
            _, _, vt = np.linalg.svd(sample - centre, full_matrices=False)
            self._basis = (centre.astype(np.float32), np.ascontiguousarray(vt[: self.dims].T, np.float32))
            d = self.dims
        projected = self._project(means)
        nlist, sample = ivf_cells(projected, self.nlist or int(2 * np.sqrt(len(means))), 0, rng)
        self._coarse = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist, faiss.METRIC_L2)
        self._coarse.cp.seed = self.seed
        self._coarse.train(sample)
        self.nlist_used = nlist

    def _project(self, x: np.ndarray) -> np.ndarray:
        if self._basis is None:
            return x
        centre, basis = self._basis
        return np.ascontiguousarray((x - centre) @ basis, np.float32)

    def _search(self, queries, k):
        q = self._prepare(queries)
        extra = len(self._owner) - len(self._rows)  # people with more than one mean face
        want = min(self.people + min(extra, self.people), len(self._owner))
        self._coarse.nprobe = min(self.nprobe, self.nlist_used)
        with threads_for(len(q)):
            _, found = self._coarse.search(self._project(q), want)
        dist = np.full((len(q), k), np.inf, np.float32)
        idx = np.full((len(q), k), -1, np.int64)
        for i, ids in enumerate(found):
            # mean face ids -> people, nearest first, each once: the closest `people` people
            slots = list(dict.fromkeys(self._owner[ids[ids >= 0]].tolist()))[: self.people]
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
            dist[i, : len(top)], idx[i, : len(top)] = d[top], cand[top]
        return dist, idx

    @property
    def params(self):
        return {"people": self.people, "dims": self.dims, "nlist": self.nlist, "nprobe": self.nprobe, "seed": self.seed}

    def memory_bytes(self) -> int:
        if not self.size:
            return 0
        faiss = import_faiss()
        rows = sum(r.nbytes for r in self._rows) + self._owner.nbytes + sum(b.nbytes for b in self._basis or ())
        return int(self._vectors.nbytes + self._sq.nbytes + rows + faiss.serialize_index(self._coarse).nbytes)
