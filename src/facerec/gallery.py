"""The gallery: enrolled embeddings, who they belong to, and the pipeline that made them.

Saved as a plain ``.npz`` (arrays + a JSON header); loading never unpickles, so a model
file cannot run code. The header records the pipeline so a mismatched use is refused.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from . import __version__
from .calibrate import Calibration
from .errors import InputError, ModelFileError, NotEnrolledError, NotFittedError
from .index import METRICS, create_index
from .paths import atomic_write_bytes
from .pipeline.config import PipelineConfig

FORMAT = "facerec-gallery"
FORMAT_VERSION = 1


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

    def fit(self, embeddings: np.ndarray, labels: np.ndarray, names: list[str], sample_ids: list[str]) -> Gallery:
        """Args: embeddings float32 (n, d); labels int (n,) indexing ``names``; sample_ids (n,) str."""
        emb = np.asarray(embeddings, dtype=np.float32)
        labels = np.asarray(labels, dtype=np.int64)
        if emb.ndim != 2 or len(emb) == 0:
            raise InputError(f"expected embeddings of shape (n, d) with n >= 1, got {emb.shape}")
        if labels.shape != (len(emb),) or len(sample_ids) != len(emb):
            raise InputError(f"expected {len(emb)} labels and sample ids, got {labels.shape[0]} and {len(sample_ids)}")
        if labels.min() < 0 or labels.max() >= len(names):
            raise InputError(f"labels must index names (0..{len(names) - 1}), got range {labels.min()}..{labels.max()}")
        self.embeddings_, self.labels_ = emb, labels
        self.names_, self.sample_ids_ = list(names), [str(s) for s in sample_ids]
        self._build_index()
        return self

    def add(self, embeddings: np.ndarray, names: list[str], sample_ids: list[str]) -> Gallery:
        """Enrol more samples; ``names`` (one per row) may be new people. The search index grows in
        place (no rebuild). Args: embeddings float32 (n, d) from the gallery's pipeline."""
        self.check_fitted()
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[1] != self.dim or len(emb) != len(names) or len(emb) != len(sample_ids):
            raise InputError(
                f"expected embeddings (n, {self.dim}) with n names and sample ids, got {emb.shape}, "
                f"{len(names)} and {len(sample_ids)}"
            )
        index_of = {n: i for i, n in enumerate(self.names_)}
        for n in names:
            index_of.setdefault(n, len(index_of))
        self.names_ = sorted(index_of, key=index_of.get)
        self.embeddings_ = np.concatenate([self.embeddings_, emb])
        self.labels_ = np.concatenate([self.labels_, np.array([index_of[n] for n in names], np.int64)])
        self.sample_ids_ = self.sample_ids_ + [str(s) for s in sample_ids]
        self.index_.add(emb, self.labels_[len(self.labels_) - len(emb) :])
        return self

    def remove(self, name: str) -> int:
        """Forget a person and every one of their samples (the index is rebuilt). Returns how many
        samples went; raises :class:`~facerec.errors.NotEnrolledError` for a name that is not enrolled."""
        self.check_fitted()
        if name not in self.names_:
            raise NotEnrolledError(f"no person named {name!r} is enrolled")
        label = self.names_.index(name)
        keep = self.labels_ != label
        if not keep.any():
            raise InputError(f"cannot remove {name!r}: a gallery needs at least one enrolled face")
        names = self.names_[:label] + self.names_[label + 1 :]
        labels = self.labels_[keep] - (self.labels_[keep] > label)  # later people move down one
        removed = int((~keep).sum())
        self.fit(self.embeddings_[keep], labels, names, [s for s, k in zip(self.sample_ids_, keep) if k])
        return removed

    def snapshot(self) -> tuple:
        """Everything :meth:`add` and :meth:`remove` change, to :meth:`restore` when a change cannot
        be kept (its save failed). The arrays are replaced, never written into, so this copies nothing."""
        self.check_fitted()
        return self.embeddings_, self.labels_, list(self.names_), list(self.sample_ids_), self.calibration

    def restore(self, state: tuple) -> None:
        """Back to a :meth:`snapshot` (the search index is rebuilt)."""
        self.embeddings_, self.labels_, self.names_, self.sample_ids_, self.calibration = state
        self._build_index()

    def people(self) -> list[tuple[str, int]]:
        """(name, enrolled images) for each person, in enrolment order."""
        self.check_fitted()
        counts = np.bincount(self.labels_, minlength=len(self.names_))
        return [(n, int(c)) for n, c in zip(self.names_, counts) if c]

    def _build_index(self) -> None:
        index = create_index(self.index, metric=self.metric, **self.index_params)
        self.index_ = index.build(self.embeddings_, self.labels_)

    def kneighbors(self, embeddings: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances float32 (m, n') and gallery indices int64 (m, n'), nearest first; n' = min(n, len)."""
        self.check_fitted()
        return self.index_.search(embeddings, n)

    def check_fitted(self) -> None:
        if not hasattr(self, "embeddings_"):
            raise NotFittedError("this gallery is empty: call fit() or load a model file first")

    @property
    def dim(self) -> int:
        self.check_fitted()
        return self.embeddings_.shape[1]

    def __len__(self) -> int:
        return len(self.embeddings_) if hasattr(self, "embeddings_") else 0

    # -- persistence ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temp file, then rename): an earlier file survives any failure."""
        self.check_fitted()
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "facerec_version": __version__,
            "k": self.k,
            "metric": self.metric,
            "pipeline": None if self.pipeline is None else self.pipeline.to_dict(),
            "names": self.names_,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "extra": self.extra,
            "index": {"backend": self.index, "params": self.index_params},
        }
        buf = io.BytesIO()
        np.savez(
            buf,
            meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            embeddings=self.embeddings_,
            labels=self.labels_,
            sample_ids=np.array(self.sample_ids_, dtype=str),
        )
        path = Path(path)
        atomic_write_bytes(path, buf.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Gallery:
        path = Path(path)
        if not path.is_file():
            raise ModelFileError(f"{path}: no such model file (train one with `facerec train`)")
        if not zipfile.is_zipfile(path):
            raise ModelFileError(f"{path}: not a facerec model file (not an .npz archive)")
        try:
            with np.load(path, allow_pickle=False) as data:
                if "meta" not in data.files:
                    raise ModelFileError(f"{path}: not a facerec model (no header)")
                meta = json.loads(bytes(data["meta"]).decode())
                emb, labels, ids = data["embeddings"], data["labels"], data["sample_ids"]
        except ModelFileError:
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, UnicodeDecodeError) as exc:
            raise ModelFileError(f"{path}: not a facerec model file ({type(exc).__name__}: {exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelFileError(f"{path}: not a facerec model file")
        version = meta.get("format_version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ModelFileError(f"{path}: damaged model file (format_version {version!r} is not an integer)")
        if version > FORMAT_VERSION:
            raise ModelFileError(f"{path}: made by a newer facerec (format {meta['format_version']}); upgrade facerec")
        try:
            index = meta.get("index") or {"backend": "exact", "params": {}}  # files from before backends
            g = cls(
                k=int(meta["k"]),
                metric=meta["metric"],
                pipeline=None if meta.get("pipeline") is None else PipelineConfig.from_dict(meta["pipeline"]),
                index=index["backend"],
                index_params=index["params"],
            )
            names = meta["names"]
            if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
                raise InputError(f"names must be a list of strings, got {type(names).__name__}")
            g.extra = meta.get("extra", {})
            cal = meta.get("calibration")
            g.calibration = None if cal is None else Calibration.from_dict(cal)
            g.fit(emb, labels, meta["names"], ids.tolist())
        except (KeyError, TypeError, InputError) as exc:
            raise ModelFileError(f"{path}: damaged model file ({exc})") from None
        if g.pipeline is not None and g.pipeline.dim != g.dim:
            raise ModelFileError(f"{path}: header says dim {g.pipeline.dim} but embeddings have {g.dim}")
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
