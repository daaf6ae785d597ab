"""The gallery as an estimator: enrolled embeddings, who they belong to, and the pipeline that made
them; ``fit``/``add``/``remove`` change it, ``kneighbors`` searches it. The header records the
pipeline so a mismatched use is refused; :mod:`facerec.gallery.file_format` writes it to a file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facerec._version import __version__
from facerec.errors import InputError, ModelFileError, NotEnrolledError, NotFittedError
from facerec.gallery.calibration import Calibration, refresh_calibration
from facerec.gallery.file_format import FORMAT, FORMAT_VERSION, check_header, read_npz, write_npz
from facerec.gallery.growable import GrowableArray
from facerec.gallery.index import METRICS, create_index
from facerec.pipeline.config import PipelineConfig

log = logging.getLogger("facerec.gallery")

#: Per-face columns beside the embedding, label and sample id, each stored by every backend:
#: a stable face id (the key a retried or replicated write is recognised by), where the face came
#: from, its box in that image, when it was enrolled (ms since the epoch), and its leave-one-out
#: genuine and impostor distances (the calibration's raw data, kept per face so that a change
#: recomputes only the faces it touches; NaN = not computed yet, inf = there is none).
COLUMNS = ("face_id", "source", "box", "enrolled_ms", "genuine_d", "impostor_d")


@dataclass
class Enrolled:
    """What :meth:`Gallery.enrol` did: faces ``added`` for ``name`` (a photo already enrolled
    counts once), the person's ``total`` now, and the photos ``skipped`` with why."""

    name: str
    added: int
    total: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def face_key(*parts) -> str:
    """A face id from what identifies the face (20 hex digits)."""
    return hashlib.blake2b("\x1f".join(str(p) for p in parts).encode(), digest_size=10).hexdigest()


def make_columns(n: int, sample_ids: np.ndarray, given: dict | None) -> dict:
    """The :data:`COLUMNS` for ``n`` new rows: ``given`` where present, else their defaults
    (a fresh random face id, the sample id as source, no box, now, distances not computed)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(COLUMNS))
    if unknown:
        raise InputError(f"unknown face columns {unknown}; the columns are {', '.join(COLUMNS)}")
    defaults = {
        "face_id": lambda: np.array([secrets.token_hex(10) for _ in range(n)], dtype=object),
        "source": lambda: np.array(sample_ids, dtype=object),
        "box": lambda: np.full((n, 4), np.nan, np.float32),
        "enrolled_ms": lambda: np.full(n, int(time.time() * 1000), np.int64),
        "genuine_d": lambda: np.full(n, np.nan, np.float32),
        "impostor_d": lambda: np.full(n, np.nan, np.float32),
    }
    dtypes = {"face_id": object, "source": object, "box": np.float32, "enrolled_ms": np.int64}
    out = {}
    for c in COLUMNS:
        v = given.get(c)
        if v is None:
            out[c] = defaults[c]()
            continue
        v = np.asarray(v, dtype=dtypes.get(c, np.float32))
        if c in ("face_id", "source"):
            v = np.array([str(x) for x in v], dtype=object)
        want = (n, 4) if c == "box" else (n,)
        if v.shape != want:
            raise InputError(f"face column {c!r} must have shape {want}, got {v.shape}")
        out[c] = v
    if len(set(out["face_id"])) != n:
        raise InputError("face ids must be unique")
    return out


def _stored_calibration(cal: object, source: str) -> Calibration | None:
    """A header's calibration, or None (recomputed from the faces) when it cannot be read: a
    threshold is derived data, and a gallery must always load."""
    if cal is None:
        return None
    try:
        return Calibration.from_dict(cal)
    except (InputError, TypeError) as exc:
        log.warning("%s: its stored threshold is not usable (%s); it is derived again from the faces", source, exc)
        return None


class Gallery:
    """Enrolled faces; behaves like a scikit-learn estimator (``fit`` returns self,
    fitted state ends in ``_``).

    Args:
        k: neighbours that vote (the seed's k-NN, default 3).
        metric: ``euclidean`` or ``cosine`` distance between embeddings.
        pipeline: the :class:`~facerec.pipeline.PipelineConfig` that made the embeddings.
        index: search backend (``exact``, ``faiss-hnsw``, ``faiss-ivf``) and ``index_params`` its
            options; both are saved with the model.
    """

    def __init__(
        self,
        *,
        k: int = 3,
        metric: str = "euclidean",
        pipeline: PipelineConfig | None = None,
        index: str = "exact",
        index_params: dict | None = None,
    ):
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        if metric not in METRICS:
            raise InputError(f"metric must be one of {METRICS}, got {metric!r}")
        self.k, self.metric, self.pipeline = k, metric, pipeline
        self.index, self.index_params = index, dict(index_params or {})
        create_index(index, metric=metric, **self.index_params)  # a bad backend or option fails here, not at fit
        self.extra: dict = {}
        self.calibration: Calibration | None = None  # the open-set threshold, set by train

    def fit(
        self,
        embeddings: np.ndarray,
        labels: np.ndarray,
        names: list[str],
        sample_ids: list[str],
        columns: dict | None = None,
    ) -> Gallery:
        """Args: embeddings float32 (n, d); labels int (n,) indexing ``names``; sample_ids (n,) str;
        ``columns`` the optional per-face columns (:data:`COLUMNS`; missing ones get their defaults)."""
        emb = np.asarray(embeddings, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        if emb.ndim != 2 or len(emb) == 0:
            raise InputError(f"expected embeddings of shape (n, d) with n >= 1, got {emb.shape}")
        if labels.shape != (len(emb),) or len(sample_ids) != len(emb):
            raise InputError(f"expected {len(emb)} labels and sample ids, got {labels.shape[0]} and {len(sample_ids)}")
        if labels.min() < 0 or labels.max() >= len(names):
            raise InputError(f"labels must index names (0..{len(names) - 1}), got range {labels.min()}..{labels.max()}")
        if len(set(names)) != len(names):
            raise InputError("names must be unique")
        sample_ids = np.array([str(s) for s in sample_ids], dtype=object)
        columns = dict(columns or {})
        if columns.get("face_id") is None:  # deterministic, so a gallery trained twice has the same ids
            columns["face_id"] = [face_key(i, s) for i, s in enumerate(sample_ids)]
        cols = make_columns(len(emb), sample_ids, columns)
        self._rows = {
            "embeddings": GrowableArray(emb),
            "labels": GrowableArray(labels),
            "sample_ids": GrowableArray(sample_ids),
            **{c: GrowableArray(v) for c, v in cols.items()},
        }
        self.names_ = list(names)
        self._name_index = {n: i for i, n in enumerate(self.names_)}
        self._counts = GrowableArray(np.bincount(labels, minlength=len(names)).astype(np.int64))
        self._row_of = None  # face id -> row, built when first needed
        self._build_index()
        return self

    # Rows are views of growable buffers: an enrolment copies only its own rows.
    embeddings_ = property(lambda self: self._rows["embeddings"].view)
    labels_ = property(lambda self: self._rows["labels"].view)
    sample_ids_ = property(lambda self: self._rows["sample_ids"].view)
    face_ids_ = property(lambda self: self._rows["face_id"].view)
    genuine_d_ = property(lambda self: self._rows["genuine_d"].view)
    impostor_d_ = property(lambda self: self._rows["impostor_d"].view)

    def column(self, name: str) -> np.ndarray:
        """One per-face column (:data:`COLUMNS`), a view."""
        return self._rows[name].view

    def add(
        self, embeddings: np.ndarray, names: list[str], sample_ids: list[str], columns: dict | None = None
    ) -> Gallery:
        """Enrol more samples; ``names`` (one per row) may be new people. Rows whose face id is
        already enrolled are skipped (an enrolment retried, or seen from a replica, counts once).
        The search index grows in place (no rebuild); the new rows are the last ones.
        Args: embeddings float32 (n, d) from the gallery's pipeline."""
        self.check_fitted()
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.dim or len(emb) != len(names) or len(emb) != len(sample_ids):
            raise InputError(
                f"expected embeddings (n, {self.dim}) with n names and sample ids, got {emb.shape}, "
                f"{len(names)} and {len(sample_ids)}"
            )
        sample_ids = np.array([str(s) for s in sample_ids], dtype=object)
        cols = make_columns(len(emb), sample_ids, columns)
        rows_of = self.row_of()
        fresh, seen = [], set()
        for i, fid in enumerate(cols["face_id"]):
            if fid not in rows_of and fid not in seen:
                fresh.append(i)
                seen.add(fid)
        start = len(self)
        if not fresh:
            return self
        fresh = np.array(fresh)
        for n in (names[i] for i in fresh):
            if n not in self._name_index:
                self._name_index[n] = len(self.names_)
                self.names_.append(n)
                self._counts.append(np.zeros(1, np.int64))
        labels = np.array([self._name_index[names[i]] for i in fresh], np.int64)
        self._rows["embeddings"].append(emb[fresh])
        self._rows["labels"].append(labels)
        self._rows["sample_ids"].append(sample_ids[fresh])
        for c, v in cols.items():
            self._rows[c].append(v[fresh])
        np.add.at(self._counts.view, labels, 1)
        for j, fid in enumerate(cols["face_id"][fresh]):
            rows_of[fid] = start + j
        self.index_.add(emb[fresh], labels)
        return self

    def enrol(self, name: str, photos, *, pipeline=None) -> Enrolled:
        """Enrol the most prominent face (large and central) of each photo as ``name``, a new
        person or more photos of one enrolled; the open-set threshold follows the gallery's new size.

        ``photos``: one or a list of paths, bytes, PIL images or uint8 (H, W, 3) arrays. Photos
        without a face, or that cannot be read, are skipped and listed in the answer; none with a
        face at all raises :class:`~facerec.errors.NoFaceError` and changes nothing. ``pipeline``:
        one of your own (else the gallery's, built once and kept: :mod:`facerec.pipeline.kept`).
        Saving is yours: ``gallery.save(path)``."""
        from facerec.errors import NoFaceError
        from facerec.gallery.calibration import distances_for_new
        from facerec.names import check_name
        from facerec.pipeline.kept import kept_pipeline
        from facerec.pipeline.options import PipelineOptions

        self.check_fitted()
        name = check_name(name)
        if isinstance(photos, (str, os.PathLike, bytes, bytearray, np.ndarray)) or hasattr(photos, "getpixel"):
            photos = [photos]
        photos = list(photos)
        if pipeline is None:
            with kept_pipeline(PipelineOptions(), self) as pipe:
                results = pipe.run(photos, subject_only=True)
        else:
            results = pipeline.run(photos, subject_only=True)
        rows, skipped = [], []
        for r in results:
            if r.error or not r.faces:
                skipped.append((r.sample.id, r.error or "no face found"))
            else:
                rows.append((r.sample.id, r.faces[0]))
        if not rows:
            raise NoFaceError(f"no face found in any of the {len(photos)} photos of {name}; nothing was enrolled")
        emb = np.stack([f.embedding for _, f in rows]).astype(np.float32)
        label = self.label_of(name)
        label = len(self.names_) if label is None else label
        update = distances_for_new(self, emb, np.full(len(emb), label))
        columns = {
            "face_id": [face_key(name, e.tobytes()) for e in emb],  # the same photo again counts once
            "box": np.array([f.box for _, f in rows], np.float32),
            "genuine_d": update.genuine,
            "impostor_d": update.impostor,
        }
        before = len(self)
        self.add(emb, [name] * len(emb), [f"enrol:{sample}" for sample, _ in rows], columns)
        for row, (genuine, impostor) in update.changed.items():  # neighbours the new faces came closer to
            self.genuine_d_[row], self.impostor_d_[row] = genuine, impostor
        refresh_calibration(self)
        return Enrolled(name, len(self) - before, self.count_of(name), skipped)

    def remove(self, name: str) -> int:
        """Forget a person and every one of their samples (the index is rebuilt). Returns how many
        samples went; raises :class:`~facerec.errors.NotEnrolledError` for a name that is not enrolled."""
        self.check_fitted()
        if self.count_of(name) == 0:
            raise NotEnrolledError(f"no person named {name!r} is enrolled")
        return self.remove_rows(self.labels_ == self._name_index[name])

    def remove_faces(self, face_ids) -> int:
        """Forget these faces (ids not enrolled are ignored); returns how many went."""
        rows_of = self.row_of()
        drop = np.zeros(len(self), bool)
        drop[[rows_of[f] for f in face_ids if f in rows_of]] = True
        return self.remove_rows(drop) if drop.any() else 0

    def remove_rows(self, drop: np.ndarray) -> int:
        """Forget the rows where ``drop`` is True (people left with no face go too)."""
        smaller = self.without(drop)
        removed = len(self) - len(smaller)
        self.__dict__.update(smaller.__dict__)
        return removed

    def without(self, drop: np.ndarray) -> Gallery:
        """A new gallery of the rows where ``drop`` is False, its index built; this one is untouched
        (so a server builds it while requests still search this one, then swaps)."""
        self.check_fitted()
        keep = ~np.asarray(drop, bool)
        if not keep.any():
            raise InputError("cannot remove every face: a gallery needs at least one enrolled face")
        labels = self.labels_[keep]
        present = np.unique(labels)
        relabel = np.full(len(self.names_), -1, np.int64)
        relabel[present] = np.arange(len(present))
        g = self.empty_like()
        g.calibration = self.calibration
        columns = {c: self.column(c)[keep] for c in COLUMNS}
        g.fit(
            self.embeddings_[keep],
            relabel[labels],
            [self.names_[i] for i in present],
            list(self.sample_ids_[keep]),
            columns,
        )
        return g

    def empty_like(self) -> Gallery:
        """An unfitted gallery with this one's settings (k, metric, pipeline, index, extra)."""
        g = Gallery(
            k=self.k, metric=self.metric, pipeline=self.pipeline, index=self.index, index_params=self.index_params
        )
        g.extra = dict(self.extra)
        return g

    def row_of(self) -> dict:
        """Face id -> row."""
        if self._row_of is None:
            self._row_of = {f: i for i, f in enumerate(self.face_ids_)}
        return self._row_of

    def label_of(self, name: str) -> int | None:
        """The label ``name`` has (None when never enrolled)."""
        return self._name_index.get(name)

    def count_of(self, name: str) -> int:
        """Images enrolled for ``name`` (0 when not enrolled); O(1)."""
        i = self._name_index.get(name)
        return 0 if i is None else int(self._counts.view[i])

    def rows_of_label(self, label: int) -> np.ndarray:
        """The rows of person ``label`` (none for a label past the names): from the search index
        when it keeps them per person (``faiss-people``), else a scan of the labels (O(n))."""
        if label >= len(self.names_) or not self._counts.view[label]:
            return np.zeros(0, np.int64)
        rows_of = getattr(self.index_, "rows_of", None)
        return rows_of(label) if rows_of is not None else np.flatnonzero(self.labels_ == label)

    def snapshot(self) -> tuple:
        """Everything :meth:`add` and the calibration change, to :meth:`restore` when a change
        cannot be kept (its save failed). Appends write past the snapshot's rows, so this copies
        only the two per-face distance columns (which a change updates in place)."""
        self.check_fitted()
        n = len(self)
        return (
            n,
            list(self.names_),
            self._counts.view[: len(self.names_)].copy(),
            self.genuine_d_.copy(),
            self.impostor_d_.copy(),
            self.calibration,
        )

    def restore(self, state: tuple) -> None:
        """Back to a :meth:`snapshot` taken since the last :meth:`fit` or removal (the search
        index is rebuilt only if rows were added since)."""
        n, names, counts, genuine, impostor, self.calibration = state
        grown = len(self) != n
        for col in self._rows.values():
            col.truncate(n)
        self.genuine_d_[:] = genuine
        self.impostor_d_[:] = impostor
        self.names_ = names
        self._name_index = {nm: i for i, nm in enumerate(names)}
        self._counts.truncate(len(names))
        self._counts.view[:] = counts
        if grown:
            self._row_of = None
            self._build_index()

    def people(self) -> list[tuple[str, int]]:
        """(name, enrolled images) for each person, in enrolment order."""
        self.check_fitted()
        return [(n, int(c)) for n, c in zip(self.names_, self._counts.view) if c]

    def _build_index(self) -> None:
        index = create_index(self.index, metric=self.metric, **self.index_params)
        self.index_ = index.build(self.embeddings_, self.labels_)

    def kneighbors(self, embeddings: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances float32 (m, n') and gallery indices int64 (m, n'), nearest first; n' = min(n, len)."""
        self.check_fitted()
        return self.index_.search(embeddings, n)

    def check_fitted(self) -> None:
        if not hasattr(self, "_rows"):
            raise NotFittedError("this gallery is empty: call fit() or load a model file first")

    @property
    def dim(self) -> int:
        self.check_fitted()
        return self.embeddings_.shape[1]

    def __len__(self) -> int:
        return len(self._rows["labels"]) if hasattr(self, "_rows") else 0

    # -- persistence ---------------------------------------------------------------------
    def header(self) -> dict:
        """Everything but the rows: what every backend stores beside them (see :mod:`facerec.store`)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "facerec_version": __version__,
            "k": self.k,
            "metric": self.metric,
            "pipeline": None if self.pipeline is None else self.pipeline.to_dict(),
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "extra": self.extra,
            "index": {"backend": self.index, "params": self.index_params},
        }

    @classmethod
    def from_header(cls, meta: object, source: str) -> Gallery:
        """An empty gallery configured as ``meta`` (:meth:`header`) says; ModelFileError naming
        ``source`` when the header is not facerec's or is damaged."""
        meta = check_header(meta, source)
        try:
            index = meta.get("index") or {"backend": "exact", "params": {}}  # files from before backends
            g = cls(
                k=int(meta["k"]),
                metric=meta["metric"],
                pipeline=None if meta.get("pipeline") is None else PipelineConfig.from_dict(meta["pipeline"]),
                index=index["backend"],
                index_params=index["params"],
            )
            g.extra = meta.get("extra", {})
        except (KeyError, TypeError, InputError) as exc:
            raise ModelFileError(f"{source}: damaged model ({exc})") from None
        g.calibration = _stored_calibration(meta.get("calibration"), source)
        return g

    def fit_rows(self, rows: dict, source: str) -> Gallery:
        """Fit from a backend's rows: ``embeddings``, ``names`` (a person's name per row),
        ``sample_ids`` and the :data:`COLUMNS`; people are numbered in order of first enrolment."""
        names = np.asarray(rows["names"], dtype=object)
        if len(names) == 0:
            raise ModelFileError(f"{source}: the gallery holds no face")
        # a database returns rows in no set order: enrolment time, then person, then sample
        order = np.lexsort((np.asarray(rows["sample_ids"], str), names.astype(str), np.asarray(rows["enrolled_ms"])))
        pick = lambda v: np.asarray(v)[order]  # noqa: E731
        people, labels = np.unique(names[order], return_inverse=True)
        first = np.full(len(people), len(order))
        np.minimum.at(first, labels, np.arange(len(order)))
        rank = np.empty(len(people), np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(len(people))
        try:
            self.fit(
                pick(rows["embeddings"]).astype(np.float32),
                rank[labels],
                [str(people[i]) for i in np.argsort(rank)],
                list(pick(rows["sample_ids"])),
                {c: pick(rows[c]) for c in COLUMNS if rows.get(c) is not None},
            )
        except InputError as exc:
            raise ModelFileError(f"{source}: damaged gallery ({exc})") from None
        self._check_dim(source)
        return self

    def rows(self, idx: np.ndarray | None = None) -> dict:
        """The rows (all, or those at ``idx``) as :meth:`fit_rows` takes them."""
        self.check_fitted()
        pick = (lambda v: v) if idx is None else (lambda v: v[idx])  # noqa: E731
        labels = pick(self.labels_)
        return {
            "embeddings": pick(self.embeddings_),
            "names": (
                np.array(self.names_, dtype=object)[labels]
                if idx is None
                else np.array([self.names_[i] for i in labels], dtype=object)  # O(len(idx)), not O(people)
            ),
            "sample_ids": pick(self.sample_ids_),
            **{c: pick(self.column(c)) for c in COLUMNS},
        }

    def photo_counts(self) -> np.ndarray:
        """int64 (people,): enrolled faces per person, for everyone with at least one; O(people)."""
        if not hasattr(self, "_counts"):
            return np.zeros(0, np.int64)
        counts = self._counts.view[: len(self.names_)]
        return counts[counts > 0]

    @property
    def people_count(self) -> int:
        """People with at least one face; O(people)."""
        return int(np.count_nonzero(self._counts.view))

    def _check_dim(self, source) -> None:
        if self.pipeline is not None and self.pipeline.dim != self.dim:
            raise ModelFileError(f"{source}: header says dim {self.pipeline.dim} but embeddings have {self.dim}")

    # -- the .npz file (its layout: facerec.gallery.file_format) -----------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temp file, then rename): an earlier file survives any failure."""
        self.check_fitted()
        columns = {c: self.column(c) for c in COLUMNS}
        meta = {**self.header(), "names": self.names_}
        return write_npz(path, meta, self.embeddings_, self.labels_, self.sample_ids_, columns)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Gallery:
        meta, emb, labels, ids, columns = read_npz(path)
        g = cls.from_header(meta, str(path))
        names = meta.get("names")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ModelFileError(f"{path}: damaged model file (names must be a list of strings)")
        columns.setdefault("face_id", [face_key(i, s) for i, s in enumerate(ids)])  # stable for older files
        try:
            g.fit(emb, labels, names, ids, columns)
        except InputError as exc:
            raise ModelFileError(f"{path}: damaged model file ({exc})") from None
        g._check_dim(str(path))
        refresh_calibration(g)  # for its size now, by today's rule (files of 0.2 kept a fixed default)
        return g

    def check_pipeline(self, *, embedder: str, weights_id: str, dim: int, source: str = "model") -> None:
        """Refuse embeddings from another embedder or weights: their distances mean nothing here."""
        p = self.pipeline
        want = (p.embedder, p.weights_id, p.dim) if p is not None else (None, None, None)
        got = (embedder, weights_id, dim)
        if want != got:
            raise ModelFileError(
                f"{source} was built with embedder {want[0]} (weights {want[1]}, {want[2]}-d) but this run "
                f"uses {got[0]} (weights {got[1]}, {got[2]}-d); use embedder {want[0]} or retrain"
            )
